# The smallest Python function: handler `main.handler`.
def handler(event, context):
    print(f"hello from {context.function_name}")
    return {"message": f"Hello, {event.get('name', 'world')}!", "runtime": "python", "requestId": context.aws_request_id}

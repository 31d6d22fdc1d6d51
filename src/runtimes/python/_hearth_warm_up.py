"""Imported (then forgotten) by shim.warm_up(): a stand-in for a user's handler module, so that the
import system's path finder and source loader have run once before a real handler is imported.
Never user code; never left in sys.modules."""


def handler(event, context):
    print(f"warm-up {context.function_name}")
    return {"message": f"Hello, {event.get('name', 'world')}!", "items": [1, 2.5, None, True], "id": context.aws_request_id}

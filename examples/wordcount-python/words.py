# Counts words in event["text"]; handler `words.count`.
import collections
import re


def count(event, context):
    words = re.findall(r"[a-z']+", str(event.get("text", "")).lower())
    top = collections.Counter(words).most_common(int(event.get("top", 3)))
    return {"words": len(words), "top": top}

"""The VAPI server protocol as pure functions (vapi.md §1–§4; message table: docs/vapi-messages.md).

``messages``   parse the envelope, classify the type, summarise end-of-call reports
``auth``       verify the shared secret / bearer / HMAC proof on each webhook
``toolcalls``  read tool calls in every payload shape, build ``{"results": [...]}``
``replies``    reply bodies for every message type that reads one
``destinations`` transfer/handoff targets: validate once, pick one per request
``assistant``  assistant templates (``app/assistants/*.yaml|json``) → ``assistant-request`` reply

No module here does I/O except :func:`app.vapi.assistant.load_template` reading its file.
"""

"""The local RunPod: a control-plane emulator, an engine simulator and the `make run` launcher.

Nothing here is imported by the gateway or the worker at run time; it stands in for RunPod and for
a GPU on machines that have neither (runpod.md §3.5 explains why the SDK's own server will not do).
"""

"""The agent runtime: an HTTP API on an agent's host that supervises child processes.

One child per execution, each in its own process group; results are kept (in memory and on
disk) until the control plane acks them, so neither side's restart loses a result.
"""

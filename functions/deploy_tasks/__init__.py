"""The deploy and undeploy state machines' Lambda tasks, one module per task: each function
imports only what its own task uses (a cold start pays for nothing else).

An exception's class name is the error name the state machines catch.
"""

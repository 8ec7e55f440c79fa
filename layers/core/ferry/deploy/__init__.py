"""Layer 2, application deploy: is the host running that commit?

One deploy request per (application, commit, trigger) runs as a Step Functions execution
(functions/statemachines/deploy.asl.json): `start` starts it, `progress` marks it in progress,
`slot` keeps one deploy per application at a time, `result` is the ONE interpreter of an outcome
(the agent's answer, a transport error, a cancel), `notify` tells the targets. Every application
status write goes through `status.update_application_status`. `removal` tears a deleted
application down through the undeploy state machine.
"""

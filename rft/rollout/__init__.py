"""What a trainer and an evaluator need from rollouts and rewards, independent of who produces them.

`episode` holds the sampled-conversation types, `sampling` the request/response types of sampling, and
`protocols` the interfaces a rollout source, a reward scorer and a tool runner satisfy. The rollout server
and the reward service implement these (over HTTP or in-process); the library never imports them.
"""

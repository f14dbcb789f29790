"""Jobs: the composition layer. A job builds a run from the config's sections, picks the implementations of
rft.rollout.protocols (the rollout server's and the reward service's clients, or their in-process modes)
and runs it. It is the only part of `rft` that imports the services; `launch/` scripts call it."""

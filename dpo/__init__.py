"""Direct Preference Optimization (Rafailov et al. 2023) from a policy, on the reward models' preference pairs."""

"""When and how a model is replaced: the policy, training a challenger, the gate."""

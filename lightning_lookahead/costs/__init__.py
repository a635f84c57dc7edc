"""Cost-aware routing: candidate prices, expected cost per prompt, decision rules and cost–quality sweeps."""

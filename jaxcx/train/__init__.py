"""Training engine: state, optimizers, losses, pure steps, sharding and the fit loop."""

"""Networks that compose the engine's units: each owns a params dict under PyTorch-style names."""

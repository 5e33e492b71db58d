"""The local pipeline behind `govsync run`: traffic generator, metrics reading, view, wiring."""

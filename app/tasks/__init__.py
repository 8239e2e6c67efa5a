"""What each task is, independent of the dialect that asked for it: validated parameters, the
worker's input, and the price quantities (design.md §6). Engine-side: imports no dialect."""

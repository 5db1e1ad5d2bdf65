"""Orders, fills, positions and the paper broker that fills them at market prices."""

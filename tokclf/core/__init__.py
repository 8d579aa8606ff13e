"""Core: what every room may import and that imports no room. Parameters (`params`), the errors
users see (`errors`), packaged models and data (`resources`), the machine (`hardware`), atomic
writes and staged folders (`fileio`) and progress bars (`progress`)."""

"""The benchmark of the 2FA API: `make bench`; its method, targets and last figures are in
bench/README.md."""

"""The one definition shared by probe and collector: wire schema v1, QCVN profiles, errors."""

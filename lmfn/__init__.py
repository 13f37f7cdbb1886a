"""LMFN (ICASSP 2025) and its ablation variants. Imports only torch."""

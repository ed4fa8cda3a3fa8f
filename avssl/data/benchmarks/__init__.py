"""data/benchmarks"""

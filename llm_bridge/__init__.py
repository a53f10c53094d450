"""llm_bridge: train real transformers on the path-star task and measure pass@k."""

"""The model: the reasoning tree, problems on it, the softmax policy and its decoding rules, the compiled tree kernels."""

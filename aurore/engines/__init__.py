"""The generation engines: sampling settings and the model choice, XLA decoding, sampling filters, step 6's model."""

"""Data sets: the real loaders (CIFAR-10, Coswara, audio source tasks) and the offline stand-ins."""

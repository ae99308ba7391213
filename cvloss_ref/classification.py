"""classification losses (stub: being written)."""

def cross_entropy(*args, **kwargs):
    raise NotImplementedError


def smooth_labels(*args, **kwargs):
    raise NotImplementedError


def binary_cross_entropy(*args, **kwargs):
    raise NotImplementedError


def binary_cross_entropy_with_logits(*args, **kwargs):
    raise NotImplementedError


def sigmoid_focal_loss(*args, **kwargs):
    raise NotImplementedError


def softmax_focal_loss(*args, **kwargs):
    raise NotImplementedError


def hinge_loss(*args, **kwargs):
    raise NotImplementedError


def multiclass_hinge_loss(*args, **kwargs):
    raise NotImplementedError


def hinge_embedding_loss(*args, **kwargs):
    raise NotImplementedError



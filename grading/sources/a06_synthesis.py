"""Assignment source: a06_synthesis (see :mod:`grading.sources`)."""

from __future__ import annotations

from . import SETUP, Exercise

EXERCISES = [
    Exercise(
        function="gram_matrix",
        title="1. Gram matrix",
        task=r"""
For feature maps `features` of shape `(N, C, H, W)` (or `(N, C, d1, ...)`), flatten each
image's map to $F \in \mathbb{R}^{C \times HW}$ and return, per image,

$$G = \frac{F F^\top}{C H W} \quad (\texttt{normalize=True}), \qquad
G = F F^\top \quad (\texttt{normalize=False}),$$

of shape `(N, C, C)`: the correlations between *channels*, which encode style and forget
where things are. Write it as a batched matrix product (`@` or `torch.bmm`);
`torch.einsum` is off limits.

*Hint:* the chapter's section on Gram matrices
([Neural style transfer](../../book/style-transfer.md)) derives the normalisation.
""",
        signature="def gram_matrix(features, normalize=True):",
        docstring="Gram matrices (N, C, C) of the feature maps (N, C, H, W).",
        solution="""
    flat = features.flatten(2)
    gram = flat @ flat.transpose(1, 2)
    if normalize:
        gram = gram / max(flat.shape[1] * flat.shape[2], 1)
    return gram
""",
        forbid="[torch.einsum]",
        visible=[
            (
                "random",
                "Check gram_matrix on random feature maps, normalised or not",
                ', cases=["random (2, 3, 4, 4)", "normalize=False", '
                '"non-square maps (1, 5, 2, 3)"]',
            ),
            (
                "shapes",
                "Check gram_matrix with one channel, 3 spatial dims and large activations",
                ', cases=["one channel (2, 1, 3, 3)", "3 spatial dims (1, 2, 2, 3, 2)", '
                '"activations of ±1e3"]',
            ),
        ],
        hidden=[""],
    ),
    Exercise(
        function="style_loss",
        title="2. Style loss",
        task=r"""
The style loss of Gatys et al. compares the normalised Gram matrices of the generated
image's features $\hat F$ and the style image's features $S$, layer by layer:

$$\mathcal{L}_{\mathrm{style}} = \sum_l w_l\, \frac{1}{N C_l^2}
    \sum_{i, c, d} \big(G(\hat F^l)_{i,cd} - G(S^l)_{cd}\big)^2 ,$$

the mean squared difference of the Gram matrices (`normalize=True`), weighted by $w_l$
(all 1 when `weights` is `None`) and summed over the layers. `pred_feats` and
`style_feats` are one tensor (one layer) or lists of tensors (one per layer). The style
image may have another spatial size, and a batch of 1 serves every image of the batch
(broadcast). An empty batch gives 0, not NaN. `F.mse_loss` is off limits.

*Hint:* [Neural style transfer](../../book/style-transfer.md), the style
reconstruction loss; `reduce_loss(values, "mean")` handles the empty batch.
""",
        signature="def style_loss(pred_feats, style_feats, weights=None):",
        docstring="Mean squared difference of normalised Gram matrices, summed over layers.",
        solution="""
    if isinstance(pred_feats, torch.Tensor):
        pred_feats, style_feats = [pred_feats], [style_feats]
    if weights is None:
        weights = [1.0] * len(pred_feats)

    def gram(features):
        flat = features.flatten(2)
        return flat @ flat.transpose(1, 2) / max(flat.shape[1] * flat.shape[2], 1)

    total = 0.0
    for weight, pred, style in zip(weights, pred_feats, style_feats):
        diff = gram(pred) - gram(style)
        total = total + weight * reduce_loss(diff * diff, "mean")
    return total
""",
        forbid="[F.mse_loss]",
        visible=[
            (
                "random",
                "Check style_loss on random features and a weighted layer",
                ', cases=["random features (2, 4, 5, 5)", "weights [2.5]", "activations of ±10"]',
            ),
            (
                "style_image",
                "Check style_loss with one style image of another size, identical "
                "features and an empty batch",
                ', cases=["one style image (1, 4, 6, 6) for a batch (3, 4, 4, 4)", '
                '"identical features (loss 0)", "empty batch (0, 4, 3, 3)"]',
            ),
        ],
        hidden=[""],
    ),
    Exercise(
        function="content_loss",
        title="3. Content loss",
        task=r"""
The content loss compares the feature maps themselves (where things are):

$$\mathcal{L}_{\mathrm{content}} = \sum_l \frac{1}{N C_l H_l W_l}
    \sum_{i,c,h,w} \big(\hat F^l_{i,chw} - P^l_{i,chw}\big)^2 ,$$

the mean squared difference of each layer's features, summed over layers (no factor
$\tfrac12$). `pred_feats` and `content_feats` are one tensor or lists of tensors of the
same shapes. An empty batch gives 0. `F.mse_loss` is off limits.

*Hint:* [Neural style transfer](../../book/style-transfer.md), the content
reconstruction loss.
""",
        signature="def content_loss(pred_feats, content_feats):",
        docstring="Mean squared difference of the feature maps, summed over layers.",
        solution="""
    if isinstance(pred_feats, torch.Tensor):
        pred_feats, content_feats = [pred_feats], [content_feats]
    total = 0.0
    for pred, content in zip(pred_feats, content_feats):
        diff = pred - content
        total = total + reduce_loss(diff * diff, "mean")
    return total
""",
        forbid="[F.mse_loss]",
        visible=[
            (
                "random",
                "Check content_loss on random features of several shapes",
                ', cases=["random features (2, 3, 4, 4)", "one image (1, 8, 2, 2)", '
                '"features (N, C, L) = (2, 5, 7)"]',
            ),
            (
                "edge_cases",
                "Check content_loss on identical features, large activations and an empty batch",
                ', cases=["identical features (loss 0)", "activations of ±100", '
                '"empty batch (0, 3, 4, 4)"]',
            ),
        ],
        hidden=[""],
    ),
    Exercise(
        function="total_variation",
        title="4. Total variation",
        task=r"""
The (anisotropic) total variation of an image sums the differences between neighbouring
pixels, vertically and horizontally, over all channels:

$$\mathrm{TV}_p(x) = \sum_{c,h,w} |x_{c,h+1,w} - x_{c,h,w}|^p
                   + \sum_{c,h,w} |x_{c,h,w+1} - x_{c,h,w}|^p ,$$

with `p=1` (absolute differences) or `p=2` (squared differences, no square root).
`images` is `(N, C, H, W)` (one total per image) or one image `(C, H, W)` (a scalar);
`reduction` reduces over images. Only neighbours inside the image count (no wrap-around).
`kornia.losses.total_variation` (which averages differently) is off limits.

*Hint:* [Neural style transfer](../../book/style-transfer.md), the smoothness
regulariser; slices such as `x[..., 1:, :] - x[..., :-1, :]` give all differences at once.
""",
        signature='def total_variation(images, p=1, reduction="mean"):',
        docstring="Anisotropic total variation of each image, summed over channels.",
        solution="""
    diff_h = images[..., 1:, :] - images[..., :-1, :]
    diff_w = images[..., :, 1:] - images[..., :, :-1]
    if p == 1:
        diff_h, diff_w = diff_h.abs(), diff_w.abs()
    else:
        diff_h, diff_w = diff_h * diff_h, diff_w * diff_w
    per_image = diff_h.sum((-3, -2, -1)) + diff_w.sum((-3, -2, -1))
    return reduce_loss(per_image, reduction)
""",
        forbid="[kornia_total_variation]",
        visible=[
            (
                "random",
                "Check total_variation on random images and on one image",
                ', cases=["random (2, 3, 5, 4)", "one image (3, 4, 4)", '
                "\"reduction='none' (one sum per image)\"]",
            ),
            (
                "p2_and_edges",
                "Check total_variation with p=2, flat images and images of one row",
                ', cases=["p=2", "p=2, reduction=\'sum\'", "flat images (every difference 0)", '
                '"one row (2, 1, 1, 5)"]',
            ),
        ],
        hidden=[""],
    ),
    Exercise(
        function="perceptual_loss",
        title="5. Perceptual loss",
        task=r"""
The feature reconstruction (perceptual) loss of Johnson et al. compares images through a
fixed network $\phi$: for each image $i$,

$$\ell_i = \sum_j w_j\, \frac{\big\|\phi_j(\hat y_i) - \phi_j(y_i)\big\|_2^2}{C_j H_j W_j},$$

the mean squared difference of the features of each layer $j$ in `layers`, weighted by
`weights` (all 1 by default; a list in the order of `layers` or a dict by layer name)
and summed over the layers. `feature_extractor(x)` returns a dict from layer names to
feature maps `(N, C_j, H_j, W_j)`; `layers` is a list of names or one name (a `str`).
The target is a constant: compute its features under `torch.no_grad()`.
`reduction="none"` returns one value per image, shape `(N,)`. `F.mse_loss` is off limits.

The tests use a small fixed convolutional net (`TinyExtractor`) as the feature
extractor, so that they run in a second on a CPU; in practice $\phi$ is VGG-16.

*Hint:* [Perceptual losses](../../book/perceptual-loss.md), the feature reconstruction
loss.
""",
        signature=(
            "def perceptual_loss(\n"
            '    pred, target, feature_extractor, layers, weights=None, reduction="mean"\n'
            "):"
        ),
        docstring="Feature reconstruction loss: weighted per-layer feature MSE, per image.",
        solution="""
    if isinstance(layers, str):
        layers = [layers]
    if weights is None:
        weights = [1.0] * len(layers)
    elif isinstance(weights, dict):
        weights = [weights[name] for name in layers]
    pred_features = feature_extractor(pred)
    with torch.no_grad():  # the target is a constant of the loss
        target_features = feature_extractor(target)
    loss = torch.zeros(pred.shape[0], dtype=pred.dtype, device=pred.device)
    for name, weight in zip(layers, weights):
        diff = (pred_features[name] - target_features[name]).flatten(1)
        loss = loss + weight * (diff * diff).mean(1)
    return reduce_loss(loss, reduction)
""",
        forbid="[F.mse_loss]",
        visible=[
            (
                "layers",
                "Check perceptual_loss on one layer, two weighted layers and a mapping",
                ', cases=["random images, layer \'act1\'", "two layers, weights [1.0, 0.5]", '
                '"weights as a mapping", "layers given as one name (str)"]',
            ),
            (
                "reductions",
                "Check perceptual_loss with each reduction, identical images and an empty batch",
                ", cases=[\"reduction='none' (one value per image)\", \"reduction='sum'\", "
                '"identical images (loss 0)", "empty batch (0, 3, 6, 6)"]',
            ),
        ],
        hidden=[""],
    ),
]

SETUP_A06 = (
    SETUP
    + """
try:  # imported only so that the tests can forbid it
    from kornia.losses import total_variation as kornia_total_variation
except ImportError:
    kornia_total_variation = "kornia.losses.total_variation"
"""
)

ASSIGNMENT = {
    "notebook": "synthesis",
    "title": "Assignment 6: image-synthesis losses",
    "chapter": "../../book/style-transfer.md",
    "chapter_title": "Neural style transfer (Part V: image synthesis)",
    "functions": "the Gram matrix, the style and content losses of neural style transfer, the "
    "total variation and the perceptual loss (chapter "
    "[Perceptual losses](../../book/perceptual-loss.md))",
    "rules": "The matching built-ins (`F.mse_loss`, `torch.einsum`, "
    "`kornia.losses.total_variation`) are off limits (each exercise names them).",
    "exercises": EXERCISES,
    "setup": SETUP_A06,
}

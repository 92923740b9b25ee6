"""DETR (Carion et al., 2020): detection as direct set prediction with a transformer, scaled down.

The pipeline, top to bottom:

1. a **CNN backbone** turns ``(B, 3, H, W)`` images into a ``(B, E, H/s, W/s)`` feature map (here a few
   convolution / batch-norm / ReLU stages, stride ``s = 8``, instead of a ResNet-50 at stride 32);
2. a fixed **2-D sine position encoding** is added to the queries and keys of every attention layer, since
   attention alone does not know where a feature came from;
3. a transformer **encoder** lets each of the ``H/s * W/s`` features attend to all the others (global context);
4. a transformer **decoder** turns ``N`` learned **object queries** into ``N`` output embeddings, each
   attending to the others (self-attention, which lets the queries avoid predicting the same object twice)
   and to the encoded image (cross-attention);
5. two **heads** read each output embedding: a class over ``C + 1`` values (the last is "no object") and
   a box ``sigmoid(...)`` as ``(cx, cy, w, h)`` normalised by the image size (optionally relative to a learned
   reference point per query, as in Deformable DETR, which makes the small model train much faster).

The layers are written with ``torch.nn.MultiheadAttention`` in DETR's post-norm layout, because
``torch.nn.Transformer`` adds the position encodings once at the input, whereas DETR adds them to the
queries and keys of every layer. The **set loss** (:func:`detr_loss`) pairs the ``N`` predictions with the
image's objects by the Hungarian algorithm (:mod:`vclib.detection.hungarian`), so no anchor, no hand-made
assignment rule and no NMS are needed: the loss itself punishes duplicates.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from vclib.checks import check_fraction, check_non_negative, check_positive_int, check_shape, check_tensor
from vclib.detection.boxes import box_convert, generalized_box_iou
from vclib.detection.hungarian import detr_match_cost, hungarian_match
from vclib.train import eval_mode, model_device, progress

Batch = tuple[torch.Tensor, list[dict[str, torch.Tensor]]]


def sine_position_encoding(height: int, width: int, embed_dim: int, temperature: float = 10000.0) -> torch.Tensor:
    """DETR's fixed 2-D sine encoding of an ``height x width`` feature map.

    Row and column positions are normalised to ``(0, 2 pi]`` (so the encoding does not depend on the map's
    size), then half of the channels encode the row, half the column, each as interleaved
    ``sin(p / T^(2k / (E/2))), cos(p / T^(2k / (E/2)))`` for ``k = 0 .. E/4 - 1``.

    Returns:
        (height * width, embed_dim) float32, rows in row-major order of the map.
    """
    check_positive_int(height, "height")
    check_positive_int(width, "width")
    check_positive_int(embed_dim, "embed_dim")
    if embed_dim % 4:
        raise ValueError(f"embed_dim must be divisible by 4, got {embed_dim}")
    half = embed_dim // 2
    frequencies = temperature ** (2 * (torch.arange(half, dtype=torch.float64) // 2) / half)  # (E/2,)
    rows = torch.arange(1, height + 1, dtype=torch.float64) / height * 2 * math.pi  # (H,)
    cols = torch.arange(1, width + 1, dtype=torch.float64) / width * 2 * math.pi  # (W,)

    def encode(positions: torch.Tensor) -> torch.Tensor:
        angles = positions[:, None] / frequencies  # (P, E/2)
        return torch.stack([angles[:, 0::2].sin(), angles[:, 1::2].cos()], dim=2).flatten(1)  # (P, E/2)

    row_code = encode(rows)[:, None, :].expand(height, width, half)  # (H, W, E/2)
    col_code = encode(cols)[None, :, :].expand(height, width, half)  # (H, W, E/2)
    return torch.cat([row_code, col_code], dim=-1).reshape(height * width, embed_dim).float()  # (H*W, E)


class Backbone(nn.Sequential):
    """``stages`` stride-2 blocks of (3x3 conv, BN, ReLU, 3x3 conv, BN, ReLU); channels double per stage.

    ``(B, 3, H, W) -> (B, width * 2**(stages - 1), H / 2**stages, W / 2**stages)``.
    """

    def __init__(self, in_channels: int = 3, width: int = 16, stages: int = 3) -> None:
        layers: list[nn.Module] = []
        channels = in_channels
        for stage in range(stages):
            out = width * 2**stage
            layers += [nn.Conv2d(channels, out, 3, 2, 1, bias=False), nn.BatchNorm2d(out), nn.ReLU(inplace=True),
                       nn.Conv2d(out, out, 3, 1, 1, bias=False), nn.BatchNorm2d(out), nn.ReLU(inplace=True)]
            channels = out
        super().__init__(*layers)
        self.out_channels, self.stride = channels, 2**stages


class EncoderLayer(nn.Module):
    """Self-attention over the image features (positions added to queries and keys), then a feed-forward
    network; each with a residual connection and a layer norm after it (post-norm, as DETR)."""

    def __init__(self, embed_dim: int, num_heads: int, ffn_dim: int, dropout: float) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(embed_dim, num_heads, dropout=dropout, batch_first=True)
        self.ffn = nn.Sequential(nn.Linear(embed_dim, ffn_dim), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(ffn_dim, embed_dim))
        self.norm1, self.norm2 = nn.LayerNorm(embed_dim), nn.LayerNorm(embed_dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """``x (B, S, E)`` features, ``pos (S, E)`` -> ``(B, S, E)``."""
        q = k = x + pos
        x = self.norm1(x + self.dropout(self.attn(q, k, x, need_weights=False)[0]))
        return self.norm2(x + self.dropout(self.ffn(x)))


class DecoderLayer(nn.Module):
    """Self-attention among the object queries, cross-attention from the queries to the encoded image,
    then a feed-forward network; residuals and post-norm. The query embeddings are added to the queries
    (and keys) of both attentions, the image positions to the cross-attention's keys."""

    def __init__(self, embed_dim: int, num_heads: int, ffn_dim: int, dropout: float) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(embed_dim, num_heads, dropout=dropout, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(embed_dim, num_heads, dropout=dropout, batch_first=True)
        self.ffn = nn.Sequential(nn.Linear(embed_dim, ffn_dim), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(ffn_dim, embed_dim))
        self.norm1, self.norm2, self.norm3 = (nn.LayerNorm(embed_dim) for _ in range(3))
        self.dropout = nn.Dropout(dropout)

    def forward(self, tgt: torch.Tensor, memory: torch.Tensor, query_pos: torch.Tensor, pos: torch.Tensor
                ) -> torch.Tensor:
        """``tgt (B, L, E)`` decoder state, ``memory (B, S, E)``, ``query_pos (L, E)``, ``pos (S, E)``
        -> ``(B, L, E)``."""
        q = k = tgt + query_pos
        tgt = self.norm1(tgt + self.dropout(self.self_attn(q, k, tgt, need_weights=False)[0]))
        attended = self.cross_attn(tgt + query_pos, memory + pos, memory, need_weights=False)[0]
        tgt = self.norm2(tgt + self.dropout(attended))
        return self.norm3(tgt + self.dropout(self.ffn(tgt)))


class DETR(nn.Module):
    """A small DETR for ``num_classes`` classes.

    Args:
        num_classes: C object classes; the class head has ``C + 1`` outputs, the last meaning "no object".
        num_queries: N, the number of object queries (the most objects one image can hold).
        embed_dim: E, the transformer's width.
        num_heads: attention heads.
        num_encoder_layers: encoder layers.
        num_decoder_layers: decoder layers; each one's output is decoded (for the auxiliary losses).
        ffn_dim: hidden width of the feed-forward networks.
        dropout: dropout in the transformer (DETR: 0.1).
        backbone_width: channels of the first backbone stage.
        backbone_stages: stride-2 stages; the stride is ``2**backbone_stages``.
        in_channels: image channels.
        reference_points: ``False`` is DETR: the box head predicts ``sigmoid(raw)``. ``True`` follows
            Deformable DETR (Zhu et al., 2021): each query also has a learned reference point ``r`` (a linear
            map of its embedding, through a sigmoid) and the box centre is ``sigmoid(raw_xy + logit(r))``, so
            that each query starts with its own place in the image and the matching is stable early on.
    """

    def __init__(self, num_classes: int, num_queries: int = 10, embed_dim: int = 64, num_heads: int = 4,
                 num_encoder_layers: int = 2, num_decoder_layers: int = 2, ffn_dim: int = 128, dropout: float = 0.0,
                 backbone_width: int = 16, backbone_stages: int = 3, in_channels: int = 3,
                 reference_points: bool = False) -> None:
        super().__init__()
        for value, name in ((num_classes, "num_classes"), (num_queries, "num_queries"), (embed_dim, "embed_dim"),
                            (num_heads, "num_heads"), (num_encoder_layers, "num_encoder_layers"),
                            (num_decoder_layers, "num_decoder_layers"), (ffn_dim, "ffn_dim")):
            check_positive_int(value, name)
        check_fraction(dropout, "dropout")
        if embed_dim % num_heads or embed_dim % 4:
            raise ValueError(f"embed_dim must be divisible by num_heads and by 4, got {embed_dim} and {num_heads}")
        self.num_classes, self.num_queries, self.embed_dim = num_classes, num_queries, embed_dim
        self.backbone = Backbone(in_channels, backbone_width, backbone_stages)
        self.input_proj = nn.Conv2d(self.backbone.out_channels, embed_dim, 1)
        self.encoder = nn.ModuleList(EncoderLayer(embed_dim, num_heads, ffn_dim, dropout)
                                     for _ in range(num_encoder_layers))
        self.decoder = nn.ModuleList(DecoderLayer(embed_dim, num_heads, ffn_dim, dropout)
                                     for _ in range(num_decoder_layers))
        self.decoder_norm = nn.LayerNorm(embed_dim)
        self.query_embed = nn.Embedding(num_queries, embed_dim)  # the learned object queries
        self.class_head = nn.Linear(embed_dim, num_classes + 1)
        self.box_head = nn.Sequential(nn.Linear(embed_dim, embed_dim), nn.ReLU(), nn.Linear(embed_dim, embed_dim),
                                      nn.ReLU(), nn.Linear(embed_dim, 4))
        self.reference = nn.Linear(embed_dim, 2) if reference_points else None

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """``images (B, in_channels, H, W)``, H and W multiples of the stride ->

        ``logits`` (B, N, C + 1) and ``boxes`` (B, N, 4) normalised ``cxcywh`` from the last decoder layer;
        ``aux_logits`` (D, B, N, C + 1) and ``aux_boxes`` (D, B, N, 4) from every decoder layer (the last too).
        """
        check_shape(images, "images", (None, None, None, None))
        stride = self.backbone.stride
        if images.shape[-1] % stride or images.shape[-2] % stride:
            raise ValueError(f"images must have a height and width divisible by {stride}, got {tuple(images.shape)}")
        features = self.input_proj(self.backbone(images))  # (B, E, H/s, W/s)
        batch, _, height, width = features.shape
        memory = features.flatten(2).transpose(1, 2)  # (B, S, E) with S = H/s * W/s
        pos = sine_position_encoding(height, width, self.embed_dim).to(memory)  # (S, E)
        for layer in self.encoder:
            memory = layer(memory, pos)
        query_pos = self.query_embed.weight  # (N, E)
        tgt = torch.zeros(batch, self.num_queries, self.embed_dim, device=images.device, dtype=memory.dtype)
        states = []
        for layer in self.decoder:
            tgt = layer(tgt, memory, query_pos, pos)  # (B, N, E)
            states.append(self.decoder_norm(tgt))
        states = torch.stack(states)  # (D, B, N, E)
        logits = self.class_head(states)  # (D, B, N, C + 1)
        raw = self.box_head(states)  # (D, B, N, 4)
        if self.reference is not None:
            reference = self.reference(query_pos).sigmoid().clamp(1e-4, 1 - 1e-4)  # (N, 2) in (0, 1)
            raw = torch.cat([raw[..., :2] + torch.logit(reference), raw[..., 2:]], dim=-1)
        boxes = raw.sigmoid()  # (D, B, N, 4)
        return {"logits": logits[-1], "boxes": boxes[-1], "aux_logits": logits, "aux_boxes": boxes}


def normalise_targets(targets: list[dict[str, torch.Tensor]], image_size: tuple[int, int]
                      ) -> list[dict[str, torch.Tensor]]:
    """Targets with ``boxes`` (G, 4) xyxy pixels -> ``boxes`` (G, 4) ``cxcywh`` divided by ``(W, H, W, H)``."""
    height, width = image_size
    scale = torch.tensor([width, height, width, height], dtype=torch.float32)
    return [{"boxes": box_convert(t["boxes"].float(), "xyxy", "cxcywh") / scale.to(t["boxes"].device),
             "labels": t["labels"].long()} for t in targets]


def match_predictions(logits: torch.Tensor, boxes: torch.Tensor, targets: list[dict[str, torch.Tensor]]
                      ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Hungarian matching per image: ``logits (B, N, C + 1)``, ``boxes (B, N, 4)`` normalised cxcywh and B
    normalised targets -> B pairs ``(query_idx, target_idx)``."""
    return [hungarian_match(detr_match_cost(logits[b], boxes[b], t["labels"], t["boxes"]))
            for b, t in enumerate(targets)]


def set_loss(logits: torch.Tensor, boxes: torch.Tensor, targets: list[dict[str, torch.Tensor]],
             no_object_weight: float = 0.1, class_weight: float = 1.0, l1_weight: float = 5.0,
             giou_weight: float = 2.0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """DETR's set loss of one decoder layer's predictions.

    Args:
        logits: (B, N, C + 1) class logits, the last column "no object".
        boxes: (B, N, 4) normalised ``cxcywh`` boxes.
        targets: B dicts with ``boxes`` (G_b, 4) normalised cxcywh and ``labels`` (G_b,) in ``[0, C)``
            (see :func:`normalise_targets`).
        no_object_weight: the cross-entropy weight of the "no object" class (the paper: 0.1, because most
            queries are empty and would otherwise swamp the objects).
        class_weight: weight of the cross-entropy in the total.
        l1_weight: weight of the L1 box loss.
        giou_weight: weight of ``1 - GIoU``.

    Returns:
        the total (differentiable) and the detached parts ``"class"``, ``"l1"`` and ``"giou"``. The box terms
        are summed over matched pairs and divided by the number of objects in the batch (at least 1).
    """
    check_tensor(logits, "logits", ndim=3, floating=True)
    check_shape(boxes, "boxes", (logits.shape[0], logits.shape[1], 4))
    if len(targets) != logits.shape[0]:
        raise ValueError(f"targets must hold one dict per image, got {len(targets)} for {logits.shape[0]} images")
    num_classes = logits.shape[-1] - 1
    matches = match_predictions(logits.detach(), boxes.detach(), targets)
    target_classes = torch.full(logits.shape[:2], num_classes, dtype=torch.int64, device=logits.device)  # (B, N)
    for b, (query_idx, target_idx) in enumerate(matches):
        target_classes[b, query_idx] = targets[b]["labels"][target_idx].to(logits.device)
    weight = torch.ones(num_classes + 1, device=logits.device, dtype=logits.dtype)
    weight[-1] = no_object_weight
    class_loss = F.cross_entropy(logits.flatten(0, 1), target_classes.flatten(), weight=weight)
    matched_pred = torch.cat([boxes[b, q] for b, (q, _) in enumerate(matches)])  # (M, 4)
    matched_true = torch.cat([t["boxes"][g].to(boxes) for t, (_, g) in zip(targets, matches, strict=True)])
    num_objects = max(len(matched_true), 1)
    l1_loss = F.l1_loss(matched_pred, matched_true, reduction="sum") / num_objects
    giou = generalized_box_iou(box_convert(matched_pred, "cxcywh", "xyxy"), box_convert(matched_true, "cxcywh", "xyxy"))
    giou_loss = (1 - giou.diagonal()).sum() / num_objects
    total = class_weight * class_loss + l1_weight * l1_loss + giou_weight * giou_loss
    return total, {"class": class_loss.detach(), "l1": l1_loss.detach(), "giou": giou_loss.detach()}


def detr_loss(outputs: dict[str, torch.Tensor], targets: list[dict[str, torch.Tensor]], aux_loss: bool = True,
              no_object_weight: float = 0.1) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """:func:`set_loss` of the last decoder layer plus, with ``aux_loss``, of every earlier layer (DETR's
    auxiliary decoding losses: each layer is matched and trained to predict the whole set on its own).

    Args:
        outputs: :meth:`DETR.forward`'s dict.
        targets: B normalised targets (:func:`normalise_targets`).
        aux_loss: add the earlier layers' losses.
        no_object_weight: the cross-entropy weight of "no object".

    Returns:
        the total and the last layer's detached parts.
    """
    total, parts = set_loss(outputs["logits"], outputs["boxes"], targets, no_object_weight)
    if aux_loss:
        for logits, boxes in zip(outputs["aux_logits"][:-1], outputs["aux_boxes"][:-1], strict=True):
            total = total + set_loss(logits, boxes, targets, no_object_weight)[0]
    return total, parts


def postprocess_detr(outputs: dict[str, torch.Tensor], image_size: tuple[int, int]) -> list[dict[str, torch.Tensor]]:
    """One detection per query, **without NMS**: score and label are the most probable real class (the
    "no object" column only lowers the scores through the softmax), the box is scaled to pixels.

    Args:
        outputs: :meth:`DETR.forward`'s dict (``logits`` (B, N, C + 1), ``boxes`` (B, N, 4) normalised cxcywh).
        image_size: ``(H, W)`` in pixels.

    Returns:
        B dicts in torchmetrics' format: ``boxes`` (N, 4) xyxy pixels, ``scores`` (N,), ``labels`` (N,) int64,
        sorted by decreasing score, and ``queries`` (N,) int64, the object query behind each detection.
    """
    height, width = image_size
    probabilities = outputs["logits"].softmax(-1)[..., :-1]  # (B, N, C): drop "no object"
    scores, labels = probabilities.max(-1)  # (B, N) each
    scale = torch.tensor([width, height, width, height], dtype=outputs["boxes"].dtype, device=outputs["boxes"].device)
    boxes = box_convert(outputs["boxes"], "cxcywh", "xyxy") * scale  # (B, N, 4)
    boxes = torch.minimum(boxes.clamp(min=0), scale)  # inside the image
    results = []
    for b in range(len(scores)):
        order = scores[b].argsort(descending=True, stable=True)
        results.append({"boxes": boxes[b, order], "scores": scores[b, order], "labels": labels[b, order],
                        "queries": order})
    return results


def train_detr(model: DETR, loader: Iterable[Batch], epochs: int, lr: float = 1e-3, backbone_lr_factor: float = 0.1,
               weight_decay: float = 1e-4, max_grad_norm: float = 0.1, aux_loss: bool = True,
               device: torch.device | str | None = None,
               progress_bar: bool | None = None, epoch_end: Callable[[int], None] | None = None
               ) -> list[dict[str, float]]:
    """Train ``model`` with AdamW, a one-cycle learning rate, gradient clipping and the set loss.

    Args:
        model: the detector.
        loader: batches of ``(images, targets)``, boxes in xyxy pixels and labels in ``[0, C)``.
        epochs: passes over ``loader``.
        lr: the peak learning rate (DETR uses 1e-4 with a pre-trained backbone; from scratch and for a
            short schedule, a larger one helps).
        backbone_lr_factor: the backbone's learning rate is ``lr * backbone_lr_factor`` (the paper: 1e-5
            against 1e-4, since its backbone is pre-trained and only needs fine-tuning).
        weight_decay: AdamW's decoupled weight decay (the paper: 1e-4).
        max_grad_norm: gradient clipping (the paper: 0.1).
        aux_loss: use the auxiliary decoding losses.
        device: where to train; ``None`` is the device of the model's first parameter.
        progress_bar: show a progress bar (``None``: on unless ``VCLIB_PROGRESS=0``).
        epoch_end: called with the epoch index after each epoch (for example to evaluate the model).

    Returns:
        one dict per step: ``step``, ``epoch``, ``loss`` and the last layer's ``class``, ``l1``, ``giou``.
    """
    device = model_device(model, device)
    model.to(device).train()
    check_non_negative(backbone_lr_factor, "backbone_lr_factor")
    backbone = list(model.backbone.parameters())
    others = [p for name, p in model.named_parameters() if not name.startswith("backbone.")]
    optimizer = torch.optim.AdamW([{"params": backbone}, {"params": others}], lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=[lr * backbone_lr_factor, lr],
                                                    total_steps=epochs * len(loader), pct_start=0.2)
    history = []
    for epoch in progress(range(epochs), progress_bar, desc="train DETR"):
        for images, targets in loader:
            images = images.to(device)
            normalised = normalise_targets([{k: v.to(device) for k, v in t.items()} for t in targets],
                                           tuple(images.shape[-2:]))
            loss, parts = detr_loss(model(images), normalised, aux_loss)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
            optimizer.step()
            scheduler.step()
            history.append({"step": len(history), "epoch": epoch, "loss": loss.item(),
                            **{name: value.item() for name, value in parts.items()}})
        if epoch_end is not None:
            epoch_end(epoch)
    return history


@torch.no_grad()
def detect_detr(model: DETR, loader: Iterable[Batch], device: torch.device | str | None = None
                ) -> tuple[list[dict[str, torch.Tensor]], list[dict[str, torch.Tensor]]]:
    """Run ``model`` over ``loader`` in eval mode: its detections (:func:`postprocess_detr`, one per query,
    no NMS) and the targets, on the CPU."""
    device = model_device(model, device)
    preds, targets = [], []
    with eval_mode(model):
        for images, batch_targets in loader:
            outputs = model(images.to(device))
            preds += [{k: v.cpu() for k, v in p.items()} for p in postprocess_detr(outputs, tuple(images.shape[-2:]))]
            targets += [{k: v.cpu() for k, v in t.items()} for t in batch_targets]
    return preds, targets

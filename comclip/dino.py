"""Grounding DINO's forward in three parts, so that what one input determines is computed once.

transformers' ``GroundingDinoForObjectDetection.forward`` runs everything for every (image, prompt)
row. Its work splits by what it reads:

- :func:`image_part` — the Swin backbone, the input projections, the extra level, position and
  level embeddings — reads the image alone (:class:`VisionFeatures`);
- :func:`text_part` — the BERT text backbone and its projection, plus the phrase-block attention
  masks — reads the prompt alone (:class:`TextFeatures`);
- :func:`fusion_part` — the feature enhancer (text ↔ image attention, deformable attention), the
  two-stage proposals, the decoder and the last layer's heads — reads both.

So several prompts on one image run the backbone once, and a prompt's text part can be computed
alone (unpadded) and padded afterwards (:meth:`TextFeatures.stack`, exactly the masks a padded batch
gets). Each part calls the model's own submodules in the order ``forward`` does, so the result is the
model's own up to float rounding (tested ≤ 1e-5 on logits; identical boxes). Only the last decoder
layer's heads are computed (``forward`` computes all six and keeps the last).

Every image here is unpadded (the detector never pads images: Swin has no pixel mask), so the pixel
mask is all ones and the valid ratios are 1.

CPU kernels: on the CPU the ``torch`` backend computes the attention blocks another way with the
same arithmetic — deformable attention with its sampling positions in pixels and its sampling as one
weighted gather (:func:`deformable_attention`, :func:`gather_sampling`), the feature enhancer's
text–image cross-attention with its image-side projections folded through the few text tokens
(:func:`folded_bi_attention`), and multi-head attention with its scale on the queries, not on the
scores (:func:`scaled_attention`). :func:`install_switches` makes each of those modules a subclass that
holds the same weights (same state dict) once; each forward then computes with what :func:`kernels`
set for its own context (a ``contextvars`` variable: per thread and per task), and as shipped outside
one. So wrappers sharing one model (two presets on the same weights) never change each other's
kernels, even from several threads at once.

Each part and each attention switch is a stopping point (:func:`comclip.stopping.check`): a forward
begun on a guess at the next click gives way there to a click for something else.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass

import torch
from torch import nn

from comclip import stopping


@dataclass(frozen=True)
class VisionFeatures:
    """What the image alone determines: flattened multi-level features ``(B, N, d)``, their position
    plus level embeddings ``(B, N, d)`` and each level's ``(h, w)``."""

    source: torch.Tensor
    position: torch.Tensor
    shapes: tuple[tuple[int, int], ...]

    @property
    def batch(self) -> int:
        return int(self.source.shape[0])

    def rows(self, index: list[int]) -> VisionFeatures:
        """These rows (an image's features repeated for each of its prompts)."""
        sel = torch.as_tensor(index).to(self.source.device, non_blocking=True)
        return VisionFeatures(self.source.index_select(0, sel), self.position.index_select(0, sel), self.shapes)

    @property
    def nbytes(self) -> int:
        return self.source.nbytes + self.position.nbytes

    @staticmethod
    def cat(parts: list[VisionFeatures]) -> VisionFeatures:
        if len({p.shapes for p in parts}) != 1:
            raise ValueError("only images of one resized size share a detector forward")
        return VisionFeatures(torch.cat([p.source for p in parts]), torch.cat([p.position for p in parts]),
                              parts[0].shapes)


@dataclass(frozen=True)
class TextFeatures:
    """What the prompt alone determines: projected BERT features ``(B, T, d)``, the token mask
    ``(B, T)`` (True: a real token), the phrase-block self-attention mask ``(B, T, T)`` (True: may
    attend) and the per-phrase position ids ``(B, T)``."""

    features: torch.Tensor
    token_mask: torch.Tensor
    block_mask: torch.Tensor
    position_ids: torch.Tensor

    @property
    def batch(self) -> int:
        return int(self.features.shape[0])

    @property
    def length(self) -> int:
        return int(self.features.shape[1])

    def rows(self, index: list[int]) -> TextFeatures:
        sel = torch.as_tensor(index).to(self.features.device, non_blocking=True)
        return TextFeatures(self.features.index_select(0, sel), self.token_mask.index_select(0, sel),
                            self.block_mask.index_select(0, sel), self.position_ids.index_select(0, sel))

    @staticmethod
    def stack(parts: list[TextFeatures]) -> TextFeatures:
        """Rows of several prompts, each padded to the longest as :func:`text_part` sees a padded batch:
        a padded token is masked out (``token_mask`` False), attends only to itself, has position 0
        and zero features (which nothing reads: every attention over text and the class head mask it)."""
        longest = max(p.length for p in parts)
        features, tokens, blocks, positions = [], [], [], []
        for p in parts:
            pad = longest - p.length
            features.append(nn.functional.pad(p.features, (0, 0, 0, pad)))
            tokens.append(nn.functional.pad(p.token_mask, (0, pad), value=False))
            block = nn.functional.pad(p.block_mask, (0, pad, 0, pad), value=False)
            eye = torch.arange(p.length, longest, device=block.device)
            block[:, eye, eye] = True
            blocks.append(block)
            positions.append(nn.functional.pad(p.position_ids, (0, pad), value=0))
        return TextFeatures(torch.cat(features), torch.cat(tokens), torch.cat(blocks), torch.cat(positions))


def image_part(model: nn.Module, pixel_values: torch.Tensor) -> VisionFeatures:
    """Backbone, input projections and embeddings of ``(B, 3, H, W)`` unpadded images."""
    stopping.check()
    mm = model.model
    b, _, h, w = pixel_values.shape
    pixel_mask = torch.ones((b, h, w), dtype=torch.long, device=pixel_values.device)
    maps, positions = mm.backbone(pixel_values, pixel_mask)
    levels = [mm.input_proj_vision[k](source) for k, (source, _) in enumerate(maps)]
    positions = list(positions)
    for k in range(len(levels), mm.config.num_feature_levels):
        source = mm.input_proj_vision[k](maps[-1][0] if k == len(maps) else levels[-1])
        ones = torch.ones(source.shape[:1] + source.shape[-2:], dtype=torch.bool, device=source.device)
        positions.append(mm.backbone.position_embedding(source, ones).to(source.dtype))
        levels.append(source)
    shapes = tuple((int(s.shape[-2]), int(s.shape[-1])) for s in levels)
    source = torch.cat([s.flatten(2).transpose(1, 2) for s in levels], 1)
    position = torch.cat([p.flatten(2).transpose(1, 2) + mm.level_embed[k].view(1, 1, -1)
                          for k, p in enumerate(positions)], 1)
    return VisionFeatures(source, position, shapes)


def text_part(model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
              token_type_ids: torch.Tensor | None = None) -> TextFeatures:
    """BERT features of tokenised prompts (padded rows carry an attention mask)."""
    stopping.check()
    from transformers.models.grounding_dino.modeling_grounding_dino import (
        generate_masks_with_special_tokens_and_transfer_map,
    )

    mm = model.model
    limit = mm.config.max_text_len
    input_ids, attention_mask = input_ids[:, :limit], attention_mask[:, :limit]
    token_type_ids = torch.zeros_like(input_ids) if token_type_ids is None else token_type_ids[:, :limit]
    block, position_ids = generate_masks_with_special_tokens_and_transfer_map(input_ids, mm.special_tokens)
    out = mm.text_backbone(input_ids, block[:, None, :, :], token_type_ids, position_ids, return_dict=True)
    return TextFeatures(mm.text_projection(out.last_hidden_state), attention_mask.bool(), block, position_ids)


def fusion_part(model: nn.Module, vision: VisionFeatures, text: TextFeatures) -> tuple[torch.Tensor, torch.Tensor]:
    """Feature enhancer, proposals, decoder and the last layer's heads for matching rows of image
    and text features. Returns the class logits ``(B, Q, T)`` and normalised cxcywh boxes ``(B, Q, 4)``."""
    stopping.check()
    mm = model.model
    source, position = vision.source, vision.position
    b, device = source.shape[0], source.device
    shapes = list(vision.shapes)
    spatial = torch.as_tensor(shapes, dtype=torch.long).to(device, non_blocking=True)
    starts = torch.cat((spatial.new_zeros((1,)), spatial.prod(1).cumsum(0)[:-1]))
    valid = torch.ones((b, len(shapes), 2), dtype=source.dtype, device=device)
    valid_pixels = torch.ones(source.shape[:2], dtype=torch.bool, device=device)
    encoded = mm.encoder(
        vision_features=source, vision_attention_mask=~valid_pixels, vision_position_embedding=position,
        spatial_shapes=spatial, spatial_shapes_list=shapes, level_start_index=starts, valid_ratios=valid,
        text_features=text.features, text_attention_mask=~text.token_mask, text_position_embedding=None,
        text_self_attention_masks=~text.block_mask, text_position_ids=text.position_ids, return_dict=True)
    vision_out, text_out = encoded.last_hidden_state_vision, encoded.last_hidden_state_text
    if not mm.config.two_stage:
        raise ValueError("only two-stage Grounding DINO models are supported (as every released one is)")
    proposals_embed, proposals = mm.generate_encoder_output_proposals(vision_out, ~valid_pixels, shapes)
    proposal_logits = mm.encoder_output_class_embed(proposals_embed, text_out, text.token_mask)
    coords = mm.encoder_output_bbox_embed(proposals_embed) + proposals
    top = torch.topk(proposal_logits.max(-1)[0], mm.config.num_queries, dim=1)[1]
    reference = torch.gather(coords, 1, top.unsqueeze(-1).repeat(1, 1, 4)).sigmoid()
    if mm.config.embedding_init_target:
        target = mm.query_position_embeddings.weight.unsqueeze(0).repeat(b, 1, 1)
    else:
        target = torch.gather(proposals_embed, 1, top.unsqueeze(-1).repeat(1, 1, mm.d_model))
    decoded = mm.decoder(
        inputs_embeds=target, vision_encoder_hidden_states=vision_out, vision_encoder_attention_mask=valid_pixels,
        text_encoder_hidden_states=text_out, text_encoder_attention_mask=~text.token_mask,
        reference_points=reference, spatial_shapes=spatial, spatial_shapes_list=shapes, level_start_index=starts,
        valid_ratios=valid, self_attn_mask=None, return_dict=True)
    hidden = decoded.intermediate_hidden_states[:, -1]
    last = decoded.intermediate_hidden_states.shape[1] - 1
    ref = reference if last == 0 else decoded.intermediate_reference_points[:, last - 1]
    logits = model.class_embed[last](vision_hidden_state=hidden, text_hidden_state=text_out,
                                     text_token_mask=text.token_mask)
    boxes = (model.bbox_embed[last](hidden) + torch.special.logit(ref, eps=1e-5)).sigmoid()
    return logits, boxes


def gather_sampling(value: torch.Tensor, shapes: list[tuple[int, int]], x: torch.Tensor, y: torch.Tensor,
                    attention: torch.Tensor) -> torch.Tensor:
    """Multi-scale deformable attention's sampling step as one weighted gather.

    ``value`` ``(B, S, H, D)``: the levels' maps (``shapes``, rows of each map contiguous); ``x``, ``y``
    ``(B, Q, H, L, P)``: sampling positions in each level's pixels as ``grid_sample`` computes them with
    ``align_corners=False`` (location × size − 0.5); ``attention`` ``(B, Q, H, L, P)``: the weights.
    Per (row, query, head) it sums ``attention × bilinear weight × value`` over every level, point and
    corner — ``grid_sample(mode="bilinear", padding_mode="zeros")`` and the weighted sum — as one
    ``embedding_bag`` over the value rows (channels contiguous) instead of a ``grid_sample`` per level on a
    channels-first copy. Returns ``(B, Q, H·D)``. Same result up to float summation order (positions
    must be finite: a NaN position is an index error here, where grid_sample returns NaN).
    """
    b, _, heads, dim = value.shape
    _, q, _, levels, points = x.shape
    device = value.device
    # Each level's map in a border of zeros (one pixel before, two after): a corner outside the map reads
    # zero, as grid_sample's zero padding does, with no bounds test per sample.
    maps = value.split([h * w for h, w in shapes], dim=1)
    table = torch.cat([nn.functional.pad(m.reshape(b, h, w, heads * dim), (0, 0, 1, 2, 1, 2)).reshape(b, -1, heads, dim)
                       for m, (h, w) in zip(maps, shapes, strict=True)], 1)  # (B, S', H, D)
    rows = table.shape[1]
    starts = [0]
    for h, w in shapes[:-1]:
        starts.append(starts[-1] + (h + 3) * (w + 3))
    level = (1, 1, 1, levels, 1)

    def per_level(values: list[float]) -> torch.Tensor:
        return torch.tensor(values, dtype=torch.float32, device=device).view(level)

    below = torch.tensor(-1.0, device=device)
    x = torch.clamp(x.float(), below, per_level([float(w) for _, w in shapes]))  # kept within the border
    y = torch.clamp(y.float(), below, per_level([float(h) for h, _ in shapes]))
    x0, y0 = x.floor(), y.floor()
    fx, fy = x - x0, y - y0
    # the top-left corner's row in the padded table (each map starts one row and one column in), then
    # the row of (batch, head) in the flat table — in integers (int64 where int32 could overflow)
    exact = torch.int32 if b * rows * heads < 2**31 else torch.int64

    def per_level_int(values: list[int]) -> torch.Tensor:
        return torch.tensor(values, dtype=exact, device=device).view(level)

    pos = (y0.to(exact) * per_level_int([w + 3 for _, w in shapes])
           + x0.to(exact) + per_level_int([st + w + 4 for st, (_, w) in zip(starts, shapes, strict=True)]))
    head = (torch.arange(heads, dtype=exact, device=device).view(1, 1, heads, 1, 1)
            + (torch.arange(b, dtype=exact, device=device) * (rows * heads)).view(b, 1, 1, 1, 1))
    top_left = pos.mul_(heads).add_(head)
    # the bag of (row, query, head): 4 corners × levels × points, corners outermost
    index = torch.empty((b, q, heads, 4, levels, points), dtype=exact, device=device)
    down = torch.tensor([(w + 3) * heads for _, w in shapes], dtype=exact, device=device)
    for k, step in enumerate((torch.zeros_like(down), torch.full_like(down, heads), down, down + heads)):
        torch.add(top_left, step.view(level), out=index[:, :, :, k])
    weight = torch.empty((b, q, heads, 4, levels, points), dtype=torch.float32, device=device)
    lower = attention.float() * fy
    upper = attention.float() - lower
    torch.mul(upper, fx, out=weight[:, :, :, 1])
    torch.sub(upper, weight[:, :, :, 1], out=weight[:, :, :, 0])
    torch.mul(lower, fx, out=weight[:, :, :, 3])
    torch.sub(lower, weight[:, :, :, 3], out=weight[:, :, :, 2])
    bag = 4 * levels * points
    out = nn.functional.embedding_bag(index.view(b * q * heads, bag), table.reshape(b * rows * heads, dim),
                                      mode="sum", per_sample_weights=weight.view(-1, bag).to(value.dtype))
    return out.view(b, q, heads * dim)


def deformable_attention(attn: nn.Module, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None,
                         encoder_hidden_states: torch.Tensor | None = None,
                         encoder_attention_mask: torch.Tensor | None = None,
                         position_embeddings: torch.Tensor | None = None,
                         reference_points: torch.Tensor | None = None, spatial_shapes: torch.Tensor | None = None,
                         spatial_shapes_list: list[tuple[int, int]] | None = None,
                         level_start_index: torch.Tensor | None = None, output_attentions: bool = False,
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """transformers' ``GroundingDinoMultiscaleDeformableAttention.forward`` (same arguments, same
    projections in the same precision) with the sampling positions computed in pixels directly —
    ``offset + (reference × size − 0.5)`` instead of ``(reference + offset / size) × size − 0.5`` — and
    sampled by :func:`gather_sampling`: the same arithmetic without the 6-d broadcasts. Returns the
    output and the attention weights, as the model's."""
    if position_embeddings is not None:
        hidden_states = hidden_states + position_embeddings
    b, q, _ = hidden_states.shape
    source = hidden_states if encoder_hidden_states is None else encoder_hidden_states
    shapes = [(int(h), int(w)) for h, w in (spatial_shapes_list or spatial_shapes.tolist())]
    heads, levels, points = attn.n_heads, attn.n_levels, attn.n_points
    if sum(h * w for h, w in shapes) != source.shape[1]:
        raise ValueError("the spatial shapes do not match the sequence length of the encoder hidden states")
    value = attn.value_proj(source)
    if attention_mask is not None and not bool(attention_mask.all()):
        value = value.masked_fill(~attention_mask[..., None], 0.0)
    value = value.view(b, source.shape[1], heads, attn.d_model // heads)
    offsets = attn.sampling_offsets(hidden_states).view(b, q, heads, levels, points, 2)
    weights = attn.attention_weights(hidden_states).view(b, q, heads, levels * points)
    weights = nn.functional.softmax(weights, -1).view(b, q, heads, levels, points)
    wh = torch.tensor([[w, h] for h, w in shapes], dtype=torch.float32, device=source.device)
    ref = reference_points.float()
    if ref.shape[-1] == 2:
        base = ref * wh - 0.5  # (B, Q, L, 2)
        x = offsets[..., 0] + base[:, :, None, :, None, 0]
        y = offsets[..., 1] + base[:, :, None, :, None, 1]
    elif ref.shape[-1] == 4:  # offsets in units of half the box over the points
        base = ref[..., :2] * wh - 0.5
        scale = ref[..., 2:] * (0.5 / points) * wh
        x = torch.addcmul(base[:, :, None, :, None, 0], offsets[..., 0], scale[:, :, None, :, None, 0])
        y = torch.addcmul(base[:, :, None, :, None, 1], offsets[..., 1], scale[:, :, None, :, None, 1])
    else:
        raise ValueError(f"Last dim of reference_points must be 2 or 4, but got {ref.shape[-1]}")
    output = attn.output_proj(gather_sampling(value, shapes, x, y, weights))
    return output, weights


def splittable(model: nn.Module) -> bool:
    """True for a two-stage transformers ``GroundingDinoForObjectDetection`` (every released one)."""
    from transformers import GroundingDinoForObjectDetection

    return isinstance(model, GroundingDinoForObjectDetection) and bool(model.config.two_stage)


def folded_bi_attention(attn: nn.Module, vision: torch.Tensor, text: torch.Tensor,
                        vision_attention_mask: torch.Tensor | None = None,
                        text_attention_mask: torch.Tensor | None = None,
                        ) -> tuple[tuple[torch.Tensor, None], tuple[torch.Tensor, None]]:
    """transformers' ``GroundingDinoBiMultiHeadAttention`` (image ↔ text cross-attention) with its
    image-side projections folded through the text tokens — the same arithmetic, in the forward's
    precision (under bf16 autocast its products run in bf16, as the model's own projections do).

    Per head ``h`` with ``N`` image tokens ``X`` and ``T`` text tokens ``Y`` (``T`` ≪ ``N``), the model
    projects ``X`` to queries and values of width 256 and then only ever meets ``T`` keys and values:

    - scores ``(X Wq_h + bq_h) K_h^T · s`` = ``X (Wq_h K_h^T s) + bq_h K_h^T s`` — a ``C × T`` matrix
      instead of projecting every image token;
    - image output ``Σ_h P_h V_h Wo_h + bo`` = ``[P_1 … P_H] · [V_1 Wo_1; …]`` — no ``N × 1024`` product;
    - text output ``Q_h (X Wv_h + bv_h)`` = ``(Q_h X) Wv_h + bv_h`` (softmax rows sum to 1).

    At 384 px (4,590 image tokens, 13 text tokens) that is ~0.5 instead of ~20 GFLOP a layer. The
    softmaxes are the model's: over text tokens for each image token (padded text masked), over image
    tokens for each text token (padded pixels masked). The model also subtracts the largest score of
    the whole batch and clamps to ±50,000 first, which changes nothing unless scores lie more than
    50,000 below that maximum (they would weigh exp(−50,000) either way, except in a row where all
    do). Returns the model's ``((image output, None), (text output, None))`` in the model's dtypes —
    attention weights are not kept.
    """
    b, n, _ = vision.shape
    t = text.shape[1]
    heads, dim = attn.num_heads, attn.head_dim
    x = vision

    def project(layer: nn.Linear) -> torch.Tensor:
        return layer(text).view(b, t, heads, dim)

    key, text_value = project(attn.text_proj), project(attn.values_text_proj)
    query_w = attn.vision_proj.weight.view(heads, dim, -1)  # (H, d, C)
    fold = torch.einsum("hdc,bthd->bcht", query_w, key).reshape(b, -1, heads * t) * attn.scale
    shift = torch.einsum("hd,bthd->bht", attn.vision_proj.bias.view(heads, dim), key) * attn.scale
    scores = (torch.bmm(x, fold) + shift.reshape(b, 1, heads * t)).view(b, n, heads, t)
    to_text = scores if text_attention_mask is None else scores.masked_fill(text_attention_mask[:, None, None, :],
                                                                           float("-inf"))
    to_text = to_text.softmax(-1)  # (B, N, H, T): each image token over the text tokens
    to_image = scores.permute(0, 2, 3, 1)  # (B, H, T, N)
    if vision_attention_mask is not None:
        to_image = to_image.masked_fill(vision_attention_mask[:, None, None, :], float("-inf"))
    to_image = to_image.softmax(-1)  # each text token over the image tokens
    out_w = attn.out_vision_proj.weight.view(-1, heads, dim)  # (C, H, d)
    text_out = torch.einsum("bthd,chd->bhtc", text_value, out_w).reshape(b, heads * t, -1)
    vision_out = torch.baddbmm(attn.out_vision_proj.bias, to_text.reshape(b, n, heads * t), text_out)
    pooled = torch.bmm(to_image.reshape(b, heads * t, n), x).view(b, heads, t, -1)  # (B, H, T, C)
    value_w = attn.values_vision_proj.weight.view(heads, dim, -1)  # (H, d, C)
    values = torch.einsum("bhtc,hdc->bthd", pooled, value_w) + attn.values_vision_proj.bias.view(heads, dim)
    text_out = attn.out_text_proj(values.reshape(b, t, heads * dim))
    return (vision_out, None), (text_out, None)


def scaled_attention(attn: nn.Module, queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                     attention_mask: torch.Tensor | None = None, output_attentions: bool | None = False,
                     ) -> tuple[torch.Tensor, ...]:
    """transformers' ``GroundingDinoMultiheadAttention`` (the text enhancer's and the decoder's
    attention) with the ``1/√d`` scale applied to the queries (``Q × K``-sized work: 900 × 256 in the
    decoder) instead of to the scores (heads × 900 × 900) — the same arithmetic up to rounding."""
    b, n, _ = queries.shape
    heads, dim = attn.num_attention_heads, attn.attention_head_size
    query = (attn.query(queries) * dim ** -0.5).view(b, -1, heads, dim).transpose(1, 2)
    key = attn.key(keys).view(b, -1, heads, dim).transpose(1, 2)
    value = attn.value(values).view(b, -1, heads, dim).transpose(1, 2)
    scores = torch.matmul(query, key.transpose(-1, -2))
    if attention_mask is not None:
        scores = scores + attention_mask
    probs = nn.functional.softmax(scores, dim=-1)
    context = torch.matmul(probs, value).permute(0, 2, 1, 3).reshape(b, n, heads * dim)
    output = attn.out_proj(context)
    return (output, probs) if output_attentions else (output,)


#: How the ``torch`` backend computes the detector's attention blocks: ``native`` (the model's own modules,
#: as shipped) or ``cpu`` (:func:`deformable_attention`, :func:`folded_bi_attention` and
#: :func:`scaled_attention`: the same arithmetic, with less work on a CPU).
KERNELS = ("native", "cpu")
_KERNELS: ContextVar[str] = ContextVar("comclip_detector_kernels", default="native")
_install_lock = threading.Lock()


@contextlib.contextmanager
def kernels(name: str) -> Iterator[None]:
    """Forwards run in this context (this thread, this task) compute with ``name``'s kernels; other
    threads and code outside the context are not affected. Needs :func:`install_switches` on the model."""
    if name not in KERNELS:
        raise ValueError(f"unknown detector kernels {name!r}; choose one of: {', '.join(KERNELS)}")
    token = _KERNELS.set(name)
    try:
        yield
    finally:
        _KERNELS.reset(token)


_switch_classes: dict[type, type] = {}
_switch_lock = threading.Lock()


def _switches() -> dict[type, type]:
    """The model's attention classes (cross-, multi-head and deformable) → subclasses computing with the
    CPU kernels where :func:`kernels` set ``cpu`` for the running context, in inference (same weights,
    state dict and, elsewhere, forward). Made once, on first use: transformers is imported lazily."""
    with _switch_lock:
        if not _switch_classes:
            _switch_classes.update(_make_switches())
        return _switch_classes


def _cpu(module: nn.Module) -> bool:
    return not module.training and _KERNELS.get() == "cpu"  # (training keeps the model's dropout)


def _make_switches() -> dict[type, type]:
    from transformers.models.grounding_dino.modeling_grounding_dino import (
        GroundingDinoBiMultiHeadAttention,
        GroundingDinoMultiheadAttention,
        GroundingDinoMultiscaleDeformableAttention,
    )

    class BiAttentionSwitch(GroundingDinoBiMultiHeadAttention):
        """The model's text–image cross-attention; :func:`folded_bi_attention` under ``cpu`` kernels."""

        def forward(self, vision_features, text_features, vision_attention_mask=None, text_attention_mask=None):
            stopping.check()
            if _cpu(self):
                return folded_bi_attention(self, vision_features, text_features, vision_attention_mask,
                                           text_attention_mask)
            return super().forward(vision_features, text_features, vision_attention_mask, text_attention_mask)

    class AttentionSwitch(GroundingDinoMultiheadAttention):
        """The model's multi-head attention; :func:`scaled_attention` under ``cpu`` kernels."""

        def forward(self, *args, **kwargs):
            stopping.check()
            if _cpu(self):
                return scaled_attention(self, *args, **kwargs)
            return super().forward(*args, **kwargs)

    class DeformableAttentionSwitch(GroundingDinoMultiscaleDeformableAttention):
        """The model's deformable attention; :func:`deformable_attention` under ``cpu`` kernels."""

        def forward(self, *args, **kwargs):
            stopping.check()
            if _cpu(self):
                return deformable_attention(self, *args, **kwargs)
            return super().forward(*args, **kwargs)

    switches = {GroundingDinoBiMultiHeadAttention: BiAttentionSwitch, GroundingDinoMultiheadAttention: AttentionSwitch,
                GroundingDinoMultiscaleDeformableAttention: DeformableAttentionSwitch}
    for switch in switches.values():  # picklable: found as comclip.dino.<name> (module __getattr__ below)
        switch.__module__, switch.__qualname__ = __name__, switch.__name__
    return switches


def __getattr__(name: str) -> type:
    if name in ("BiAttentionSwitch", "AttentionSwitch", "DeformableAttentionSwitch"):
        for switch in _switches().values():
            if switch.__name__ == name:
                return switch
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def install_switches(model: nn.Module) -> int:
    """Make every text–image cross-attention a ``BiAttentionSwitch``, every multi-head attention an
    ``AttentionSwitch`` and every deformable attention a ``DeformableAttentionSwitch`` in a transformers
    Grounding DINO (idempotent, thread-safe; the model's own kernels stay the default); returns how many
    were made."""
    switches = _switches()
    installed = 0
    with _install_lock:
        for module in model.modules():
            switch = switches.get(type(module))
            if switch is not None:
                module.__class__ = switch
                installed += 1
    return installed

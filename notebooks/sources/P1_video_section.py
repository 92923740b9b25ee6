# %% [markdown]
# ## Video Classification
#
# So far every input was a single picture. Videos add time and sound, and a large video benchmark is
# far too big to decode frame by frame in a course. YouTube-8M (2018 version) has 6.1 million videos,
# 3,862 classes (Knowledge Graph entities such as *Game*, *Vehicle* or *Guitar*) and about 3 labels per
# video. Google ran an Inception network over one frame per second and an audio network over each
# second, compressed both with PCA, and published the features. The *video-level* version averages them
# over the whole video, so each video becomes two vectors: `mean_rgb` (1,024 numbers) and `mean_audio`
# (128 numbers).
#
# We learn from these pre-extracted features. A video classifier here reads 1,152 numbers, and it is
# **multi-label**: a video can be *Game*, *Video game* and *Minecraft* at once. So instead of one
# softmax over the classes we use one sigmoid per class and binary cross-entropy, averaged over the
# C classes:
#
# $$L(z, y) = -\frac{1}{C}\sum_{c=1}^{C} \Big[y_c \log \sigma(z_c) + (1 - y_c) \log\big(1 - \sigma(z_c)\big)\Big].$$
#
# ### YouTube-8M Dataset
#
# Each split is stored as 3,844 *TFRecord shards* (`train0000.tfrecord`, ...). A TFRecord file is a
# plain sequence of records, each framed as
#
# | bytes | content |
# |---|---|
# | 8 | the length $n$ of the data (little-endian uint64) |
# | 4 | masked CRC-32C checksum of those 8 bytes |
# | $n$ | the data: one serialized `tf.train.Example` protocol buffer |
# | 4 | masked CRC-32C checksum of the data |
#
# An `Example` maps feature names to lists of bytes, integers or floats: here `id` (bytes), `labels`
# (int64), `mean_rgb` and `mean_audio` (floats). `vclib.data.youtube8m` reads and writes this format
# without TensorFlow: the framing and checksums by hand, the `Example` message through the `protobuf`
# package. A shard is streamed as a PyTorch `IterableDataset`; with several DataLoader workers, each
# worker reads its own shards.
#
# **In quick mode the data is synthetic.** The real video-level features are about 31 GB behind a
# download that a laptop or a Colab session may not have, so quick mode writes *synthetic* shards in
# exactly the real format and reads them back with the same reader. They imitate what matters for
# learning: 100 classes with long-tailed (Zipf-like) frequencies; 1 to 5 labels per video that tend to
# come from the same topic; classes recognised mainly by how they look, mainly by how they sound, or by
# both; and some classes that come in two opposite "looks". Every number below describes this
# stand-in, not YouTube. Full mode uses real shards when they are in `cfg.data_dir / "youtube8m"`
# (`youtube8m.download("train", num_shards=...)` fetches them, and the same for `"validate"`).

# %%
import struct

import torch.nn.functional as F
from torch.utils.data import DataLoader

from vclib import metrics, train
from vclib.data import make_loader, youtube8m
from vclib.data.tfrecord import crc32c, describe_example, masked_crc32c, read_tfrecord
from vclib.video import FusionMLP, LogisticModel, MoeModel
from vclib.video.browser import draw_prediction_grid, prediction_browser

synthetic = cfg.pick(quick=youtube8m.SyntheticConfig(),
                     full=youtube8m.SyntheticConfig(train_videos=20_000, validate_videos=5_000))
train_stream = youtube8m.load_youtube8m("train", source=cfg.data_source, data_dir=cfg.data_dir,
                                        synthetic=synthetic)
val_set = youtube8m.load_youtube8m("validate", source=train_stream.source, data_dir=cfg.data_dir,
                                   synthetic=synthetic).read_all()
num_classes = train_stream.num_classes
print(f"{len(train_stream.files)} training shards, {len(val_set):,} validation videos, {num_classes:,} classes")

# %% [markdown]
# The first record of the first training shard, byte by byte: the 12-byte header, then the `Example`.

# %%
shard = train_stream.files[0]
blob = shard.read_bytes()
length, length_crc = struct.unpack_from("<QI", blob, 0)  # uint64 length, uint32 masked CRC
print(f"{shard.name}: {len(blob):,} bytes, {len(read_tfrecord(shard))} records")
print(f"record 0: header {blob[:12].hex(' ')} -> data length {length}, stored length checksum {length_crc:#010x}")
print(describe_example(blob[12 : 12 + length]))

# %%
# NBVAL_CHECK_OUTPUT
record = next(youtube8m.iter_records(shard))
print("length checksum recomputed from the 8 length bytes matches:", masked_crc32c(crc32c(blob[:8])) == length_crc)
print("features of a record:", sorted(record))
print("mean_rgb and mean_audio sizes:", record["mean_rgb"].shape, record["mean_audio"].shape)
print("validation labels are multi-hot:", bool(((val_set.labels == 0) | (val_set.labels == 1)).all()))
labels_per_video = val_set.labels.sum(1)  # (N,)
print("every validation video has 1 to 5 labels:", bool(labels_per_video.min() >= 1 and labels_per_video.max() <= 5))

# %% [markdown]
# **Streaming.** `train_stream` is an `IterableDataset`: a `DataLoader` with two workers gives each worker
# every second shard, so the workers read all videos once between them, and no video twice.

# %%
# NBVAL_CHECK_OUTPUT
stream = youtube8m.YouTube8M(train_stream.files[:4], num_classes)  # the first four shards
streamed_ids = [video_id for batch in DataLoader(stream, batch_size=512, num_workers=2) for video_id in batch[2]]
stored_ids = [record["id"] for path in stream.files for record in youtube8m.iter_records(path)]
print("batch of a stream:", [tuple(t.shape) for t in next(iter(DataLoader(stream, batch_size=4)))[:2]])
print("two workers stream every video of the shards exactly once:", sorted(streamed_ids) == sorted(stored_ids))

# %% [markdown]
# **Labels.** A few classes are everywhere and most are rare: on log-log axes, frequency against rank
# falls roughly on a straight line (Zipf's law), as it does for the real vocabulary. Rare classes have
# few positive examples to learn from, and every metric below is dominated by the frequent ones.

# %%
label_counts = val_set.labels.sum(0)  # (C,) videos per class
fig, (ax_rank, ax_count) = plt.subplots(1, 2, figsize=(11, 3.5))
ranked = label_counts.sort(descending=True).values
ax_rank.loglog(torch.arange(1, num_classes + 1), ranked, marker=".", linestyle="none")
ax_rank.set(xlabel="class rank", ylabel="videos with the label", title="label frequency (log-log)")
ax_count.bar(*torch.unique(labels_per_video, return_counts=True))
ax_count.set(xlabel="labels per video", ylabel="videos", title=f"{labels_per_video.mean():.2f} labels per video")
plt.show()
top_decile = ranked[: max(1, num_classes // 10)].sum() / ranked.sum()
print(f"the 10% most frequent classes hold {top_decile:.0%} of all labels")

# %% [markdown]
# **Co-occurrence.** Labels are not independent: a video about a video game is likely to carry several
# gaming labels. For the 20 most frequent classes, cell $(i, j)$ shows $P(\text{label } j \mid
# \text{label } i)$, the fraction of videos with label $i$ that also have label $j$.

# %%
frequent = label_counts.argsort(descending=True)[:20]  # (20,)
members = val_set.labels[:, frequent]  # (N, 20)
together = members.T @ members  # (20, 20): videos carrying both labels
conditional = together / together.diag()[:, None]  # row i: P(label j | label i)
conditional.fill_diagonal_(float("nan"))
fig, ax = plt.subplots(figsize=(5.5, 4.5))
image = ax.imshow(conditional, cmap="viridis")
ax.set_xticks(range(20), frequent.tolist(), fontsize=7, rotation=90)
ax.set_yticks(range(20), frequent.tolist(), fontsize=7)
ax.set(xlabel="label j", ylabel="label i", title="P(label j | label i), 20 most frequent classes")
fig.colorbar(image)
plt.show()
row, col = divmod(int(torch.nan_to_num(conditional, nan=0.0).argmax()), 20)
print(f"strongest pair: {conditional[row, col]:.0%} of videos with class {int(frequent[row])} "
      f"also have class {int(frequent[col])} (its overall rate: {label_counts[frequent[col]] / len(val_set):.0%})")

# %% [markdown]
# **Features.** Both modalities are PCA outputs, so the first dimensions vary most. The audio features
# spread wider than the visual ones, which matters for models that mix them without normalising.

# %%
fig, (ax_std, ax_hist) = plt.subplots(1, 2, figsize=(11, 3.5))
for name, features in (("mean_rgb", val_set.rgb), ("mean_audio", val_set.audio)):
    ax_std.plot(features.std(dim=0), label=f"{name} ({features.shape[1]} dims)")
    ax_hist.hist(features.flatten().numpy(), bins=120, density=True, alpha=0.6, label=name)
    print(f"{name:<11} mean {features.mean():+.3f}  std {features.std():.3f}  "
          f"mean vector length {features.norm(dim=1).mean():.2f}")
ax_std.set(xlabel="dimension", ylabel="standard deviation", title="spread per dimension")
ax_std.legend()
ax_hist.set(xlabel="value", ylabel="density", title="all values")
ax_hist.legend()
plt.show()

# %% [markdown]
# ### Classification using Video Features
#
# Three models, from the YouTube-8M starter code and beyond. All return one logit per class and train
# with `train.fit` and binary cross-entropy.
#
# **Logistic regression (one-vs-all):** $p_c(x) = \sigma(w_c^\top x + b_c)$, a separate hyperplane per
# class.

# %%
vclib.show_source(LogisticModel)

# %% [markdown]
# **Mixture of experts:** per class, $M$ logistic "experts" and a softmax gate over $M + 1$ choices (the
# extra one is a dummy expert that always says 0):
#
# $$p_c(x) = \sum_{m=1}^{M} g_{c,m}(x)\, \sigma(e_{c,m}^\top x), \qquad
# g_c(x) = \operatorname{softmax}\big(a_{c,0}^\top x, \dots, a_{c,M}^\top x\big).$$
#
# The gate can send different kinds of videos of one class to different experts: a class whose videos
# come in two looks, on opposite sides of the average video, needs two hyperplanes, which logistic
# regression does not have. The model returns $\log p - \log(1 - p)$, computed from log-sum-exps so that
# it stays finite when $p$ is within rounding of 0 or 1.

# %%
vclib.show_source(MoeModel)

# %% [markdown]
# **Fusion MLP:** a hidden layer can combine the modalities. *Early fusion* concatenates `mean_rgb` and
# `mean_audio` before the MLP; *late fusion* runs one MLP per modality and adds their per-class logits
# (each modality votes in log-odds).

# %%
vclib.show_source(FusionMLP)

# %% [markdown]
# **Scoring: global average precision.** YouTube-8M's official metric keeps each video's top $k = 20$
# predictions, pools all $N \times 20$ of them into one list sorted by score, and computes the average
# precision of that list,
#
# $$\text{GAP} = \frac{1}{P} \sum_{i=1}^{20N} \text{precision@}i \cdot \text{hit}_i,$$
#
# where $P$ counts every true label, also those that fell outside a video's top 20. We also report
# Hit@1 (is the top prediction a true label?) and PERR (for a video with $r$ labels, the precision of its
# top $r$ predictions). All three only compare scores, so logits and probabilities give the same values.

# %%
vclib.show_source(metrics.gap)

# %%
# NBVAL_CHECK_OUTPUT
truth = val_set.labels
print("GAP of the true labels used as scores is 1:", metrics.gap(truth, truth) == 1.0)
print("GAP of random scores is below 0.1:", metrics.gap(torch.rand(truth.shape), truth) < 0.1)
print("keeping only the top 1 loses the other labels:", metrics.gap(truth, truth, top_k=1) < 1.0)

# %% [markdown]
# Now train the four models for the same number of epochs with the same optimiser and compare them on
# the validation split. For the ablation further down, the mixture of experts is also trained on each
# modality alone. The training split sits in memory (about 4.6 KB per video); with more real shards
# than memory holds, pass `DataLoader(youtube8m.YouTube8M(files, modality=..., shuffle=True), batch_size,
# num_workers=4)` to `train.fit` instead: the same batches, streamed.

# %%
batch_size, epochs, learning_rate = cfg.pick(quick=(512, 8, 5e-3), full=(1024, 10, 1e-3))
train_set = train_stream.read_all()  # the whole training split in memory, in shard order
features = youtube8m.RGB_DIM + youtube8m.AUDIO_DIM
runs = {  # name: (model, the inputs it reads)
    "logistic": (LogisticModel(features, num_classes), "both"),
    "moe": (MoeModel(features, num_classes, num_mixtures=2), "both"),
    "mlp_early": (FusionMLP(num_classes, fusion="early"), "split"),
    "mlp_late": (FusionMLP(num_classes, fusion="late"), "split"),
    "moe_rgb_only": (MoeModel(youtube8m.RGB_DIM, num_classes, num_mixtures=2), "rgb"),
    "moe_audio_only": (MoeModel(youtube8m.AUDIO_DIM, num_classes, num_mixtures=2), "audio"),
}
histories, val_scores, results = {}, {}, {}
for name, (model, modality) in runs.items():
    train_loader = make_loader(train_set.with_modality(modality), batch_size, shuffle=True, seed=cfg.seed)
    val_loader = make_loader(val_set.with_modality(modality), 1024)
    histories[name] = train.fit(model, train_loader, epochs=epochs, loss_fn=F.binary_cross_entropy_with_logits,
                                optimizer=torch.optim.Adam(model.parameters(), lr=learning_rate),
                                val_loader=val_loader, metrics={"gap": metrics.gap}, device=cfg.device, desc=name)
    scores, targets = train.predict(model, val_loader)
    val_scores[name] = scores
    results[name] = {"GAP@20": cfg.log_metric(f"video_gap_{name}", metrics.gap(scores, targets)),
                     "Hit@1": metrics.hit_at_one(scores, targets), "PERR": metrics.perr(scores, targets)}

print(f"{'model':<16}{'GAP@20':>9}{'Hit@1':>9}{'PERR':>9}   parameters")
for name, row in results.items():
    parameters = sum(p.numel() for p in runs[name][0].parameters())
    print(f"{name:<16}{row['GAP@20']:>9.3f}{row['Hit@1']:>9.3f}{row['PERR']:>9.3f}   {parameters:,}")
fig, ax = plt.subplots(figsize=(6, 3.5))
for name in ("logistic", "moe", "mlp_early", "mlp_late"):
    ax.plot([h["epoch"] for h in histories[name]], [h["val_gap"] for h in histories[name]], marker="o", label=name)
ax.set(xlabel="epoch", ylabel="validation GAP@20", title="learning curves")
ax.legend()
plt.show()

# %%
# NBVAL_CHECK_OUTPUT
best_model = max(("logistic", "moe", "mlp_early", "mlp_late"), key=lambda name: results[name]["GAP@20"])
moe_gap, logistic_gap = results["moe"]["GAP@20"], results["logistic"]["GAP@20"]
print("best validation GAP@20 >= 0.80:", results[best_model]["GAP@20"] >= 0.80)
print("moe_gap > logistic_gap:", moe_gap > logistic_gap)
print("validation scores shape:", tuple(val_scores["moe"].shape[1:]), "classes per video")

# %% [markdown]
# **Where the models differ.** Per-class average precision against how often the class occurs: frequent
# classes are learned well by every model, and the gap between models is widest on the classes logistic
# regression cannot separate with one hyperplane.

# %%
class_ap = {name: metrics.average_precision_per_class(val_scores[name], val_set.labels)
            for name in ("logistic", "moe")}
fig, ax = plt.subplots(figsize=(6, 4))
for name, ap in class_ap.items():
    ax.scatter(label_counts, ap, s=14, alpha=0.7, label=f"{name} (mean AP {ap.nanmean():.3f})")
ax.set_xscale("log")
ax.set(xlabel="validation videos with the label (log scale)", ylabel="average precision",
       title="per-class AP against class frequency")
ax.legend()
plt.show()
gain = class_ap["moe"] - class_ap["logistic"]
print(f"mixture of experts improves {int((gain > 0.05).sum())} of {num_classes} classes by more than 0.05 AP")

# %% [markdown]
# **Ablation: which modality matters?** The mixture of experts trained on `mean_rgb` alone and on
# `mean_audio` alone, against both. Each point of the right plot is a class: vision classes sit low on the right,
# sound classes high on the left, and only the two modalities together recognise both kinds.

# %%
ablation = {"rgb + audio": results["moe"]["GAP@20"], "rgb only": results["moe_rgb_only"]["GAP@20"],
            "audio only": results["moe_audio_only"]["GAP@20"]}
ablation_ap = {modality: metrics.average_precision_per_class(val_scores[f"moe_{modality}_only"], val_set.labels)
               for modality in ("rgb", "audio")}
for name, value in ablation.items():
    print(f"mixture of experts, {name:<12} GAP@20 {value:.3f}")
fig, (ax_bar, ax_scatter) = plt.subplots(1, 2, figsize=(11, 4))
ax_bar.bar(list(ablation), list(ablation.values()), color=["#4c72b0", "#dd8452", "#55a868"])
ax_bar.set(ylabel="validation GAP@20", title="inputs of the mixture of experts")
ax_scatter.scatter(ablation_ap["rgb"], ablation_ap["audio"], s=14)
ax_scatter.plot([0, 1], [0, 1], color="0.6", linewidth=1)
ax_scatter.set(xlabel="AP from rgb only", ylabel="AP from audio only", title="per class")
plt.show()

# %%
# NBVAL_CHECK_OUTPUT
print("rgb + audio beats rgb only and audio only:",
      ablation["rgb + audio"] > max(ablation["rgb only"], ablation["audio only"]))

# %% [markdown]
# **Browse the predictions.** For each validation video: the mixture of experts' most probable classes
# (green: a true label) and the true labels it did not rank in its top k. Below, two videos and the
# first whose top prediction is wrong; in the browser, tick the box to see only such videos.

# %%
top_prediction = val_scores["moe"].argmax(dim=1, keepdim=True)  # (N, 1)
hit_at_one_misses = (val_set.labels.gather(1, top_prediction).flatten() == 0).nonzero().flatten()
draw_prediction_grid(val_scores["moe"], val_set.labels, val_set.ids, indices=[0, 1, *hit_at_one_misses[:1].tolist()],
                     top_k=8)
plt.show()
prediction_browser(val_scores["moe"], val_set.labels, val_set.ids)

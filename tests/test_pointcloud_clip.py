"""vclib.pointcloud.tinyclip and pointclip: the contrastive loss, renders, the zero-shot classifier."""

import importlib.util
import math

import pytest
import torch
import torch.nn.functional as F
import trimesh

from vclib.pointcloud import tinyclip
from vclib.pointcloud.pointclip import ZeroShotPointClassifier, fit_linear_probe, open_clip_encoders

CLASSES = ["chair", "night_stand", "table"]


def reference_clip_loss(image_features, text_features, logit_scale):
    logits = logit_scale * F.normalize(image_features, dim=1) @ F.normalize(text_features, dim=1).T
    labels = torch.arange(len(logits))
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


@pytest.mark.exercise("vclib.pointcloud.tinyclip.clip_loss")
def test_clip_loss_equals_cross_entropy_both_ways():
    images = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    texts = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    scale = torch.tensor(7.0, dtype=torch.float64, requires_grad=True)
    ours, ref = tinyclip.clip_loss(images, texts, scale), reference_clip_loss(images, texts, scale)
    assert torch.allclose(ours, ref)
    grads = torch.autograd.grad(ours, (images, texts, scale))
    grads_ref = torch.autograd.grad(ref, (images, texts, scale))
    assert all(torch.allclose(a, b) for a, b in zip(grads, grads_ref, strict=True))
    with pytest.raises(ValueError, match="text_features"):
        tinyclip.clip_loss(images, texts[:3], scale)


def test_tokenizer_maps_unknown_words_to_unk():
    tokenizer = tinyclip.WordTokenizer(["a photo of a night_stand."], max_length=6)
    ids = tokenizer(["a photo of a night stand", "point cloud depth map of a chair"])
    assert ids.shape == (2, 6)
    assert (ids[0, :6] > 1).all() and ids[1, 0] == 1 and ids[1, 5] == tokenizer.vocabulary["a"]


def test_camera_frames_are_rotations_and_match_the_depth_map_top_view():
    frames = tinyclip.camera_frame(torch.rand(5) * 6, torch.rand(5) - 0.5)
    assert torch.allclose(frames @ frames.transpose(1, 2), torch.eye(3).expand(5, 3, 3), atol=1e-6)
    assert torch.allclose(frames.det(), torch.ones(5), atol=1e-6)
    from vclib.pointcloud.representations import VIEW_FRAMES

    top = tinyclip.camera_frame(torch.tensor([-math.pi / 2]), torch.tensor([math.pi / 2]))[0]
    assert torch.allclose(top, VIEW_FRAMES[4], atol=1e-6)


def test_renders_are_shaded_images_of_the_mesh():
    box = trimesh.creation.box(extents=(1.0, 1.0, 1.0))
    images = tinyclip.render_dataset([box], views_per_mesh=3, image_size=16, num_samples=4000)
    assert images.shape == (3, 1, 16, 16) and 0 <= images.min() and images.max() <= 1
    points, normals = tinyclip.oriented_samples(box, 4000)
    from_x = tinyclip.camera_frame(torch.zeros(1), torch.zeros(1))
    front = tinyclip.render_shaded(points[None], normals[None], from_x, 16)
    assert torch.allclose(front[0, 4:12, 4:12], torch.ones(8, 8))  # a face seen head-on: full light
    assert front[0, 0, 0] == 0  # background


@pytest.mark.exercise("vclib.pointcloud.pointclip.forward")
def test_zero_shot_classifier_with_tiny_encoders():
    model = tinyclip.TinyCLIP(CLASSES, embed_dim=8, width=4).eval()
    classifier = ZeroShotPointClassifier(model.image_encoder, model.encode_text, CLASSES, image_size=16)
    scores = classifier(torch.rand(2, 100, 3) - 0.5)
    assert scores.shape == (2, 3) and scores.abs().max() <= 6 + 1e-5  # six cosines at most
    assert classifier.prompts()[1] == "point cloud depth map of a night stand."
    features = classifier.view_features(torch.rand(4, 50, 3) - 0.5)
    assert features.shape == (4, 6, 8) and torch.allclose(features.norm(dim=-1), torch.ones(4, 6), atol=1e-5)
    weights = torch.tensor([1.0, 0, 0, 0, 0, 0])
    one_view = ZeroShotPointClassifier(model.image_encoder, model.encode_text, CLASSES, image_size=16,
                                       view_weights=weights)
    points = torch.rand(2, 100, 3) - 0.5
    per_view = classifier.view_features(points) @ classifier.text_features().T  # (B, V, C)
    assert torch.allclose(one_view(points), per_view[:, 0], atol=1e-6)
    with pytest.raises(ValueError, match="prompt"):
        ZeroShotPointClassifier(model.image_encoder, model.encode_text, CLASSES, prompt="no slot")


def test_linear_probe_separates_separable_features():
    features = torch.cat([torch.randn(10, 4) + 4, torch.randn(10, 4) - 4])
    targets = torch.tensor([0] * 10 + [1] * 10)
    probe = fit_linear_probe(features, targets, 2, epochs=100)
    assert (probe(features).argmax(1) == targets).all()


@pytest.mark.skipif(importlib.util.find_spec("open_clip") is None, reason="open_clip not installed")
def test_open_clip_path_without_pretrained_weights():
    import open_clip

    model = open_clip.create_model("RN50", pretrained=None).eval()
    image_encoder, text_encoder = open_clip_encoders(model, open_clip.get_tokenizer("RN50"))
    classifier = ZeroShotPointClassifier(image_encoder, text_encoder, CLASSES, num_views=2, image_size=16)
    with torch.no_grad():
        assert classifier(torch.rand(1, 64, 3) - 0.5).shape == (1, 3)


def test_captioned_renders_augment_only_the_object():
    images = torch.zeros(4, 1, 8, 8)
    images[:, :, 2:6, 2:6] = torch.rand(4, 1, 4, 4) * 0.9 + 0.1
    labels = torch.tensor([0, 1, 2, 0])
    tokenizer = tinyclip.WordTokenizer([t.format(c) for t in tinyclip.TEMPLATES for c in CLASSES])
    plain = tinyclip.CaptionedRenders(images, labels, CLASSES, tokenizer, max_gamma=1.0, max_pixel_dropout=0.0)
    assert torch.equal(plain[1][0][0], images[1])
    augmented = tinyclip.CaptionedRenders(images, labels, CLASSES, tokenizer, seed=3)
    for i in range(len(augmented)):
        (image, ids), label = augmented[i]
        assert image.shape == (1, 8, 8) and 0 <= image.min() and image.max() <= 1 and label == labels[i]
        assert (image[images[i] == 0] == 0).all()
    with pytest.raises(ValueError, match="max_gamma"):
        tinyclip.CaptionedRenders(images, labels, CLASSES, tokenizer, max_gamma=0.5)

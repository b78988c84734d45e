import sys, time; sys.path.insert(0, "/tmp/spike")
import torch, numpy as np, onnxruntime as ort
from common import *
torch.set_num_threads(2)
m = build("fcos"); m.load_state_dict(torch.load("/tmp/spike/fcos.pt", weights_only=True)); m.eval()
class Core(torch.nn.Module):   # backbone+FPN+head only, normalised float input, no resize/NMS
    def __init__(s, m): super().__init__(); s.m = m
    def forward(s, x):
        f = list(s.m.backbone(x).values()); o = s.m.head(f); return o["cls_logits"], o["bbox_regression"], o["bbox_ctrness"]
core = Core(m).eval(); x = torch.randn(1, 3, 240, 320)
torch.onnx.export(core, (x,), "/tmp/spike/fcos_core.onnx", dynamo=False, opset_version=17, input_names=["x"])
so = ort.SessionOptions(); so.intra_op_num_threads = 2
s = ort.InferenceSession("/tmp/spike/fcos_core.onnx", so, providers=["CPUExecutionProvider"])
xn = x.numpy()
for _ in range(3): s.run(None, {"x": xn})
c0 = time.process_time(); t0 = time.perf_counter()
for _ in range(40): s.run(None, {"x": xn})
print(f"core ORT: {1000*(time.process_time()-c0)/40:.1f} CPU-ms, {1000*(time.perf_counter()-t0)/40:.1f} wall-ms")
with torch.inference_mode():
    for _ in range(3): core(x)
    c0 = time.process_time(); t0 = time.perf_counter()
    for _ in range(40): core(x)
print(f"core eager: {1000*(time.process_time()-c0)/40:.1f} CPU-ms, {1000*(time.perf_counter()-t0)/40:.1f} wall-ms")

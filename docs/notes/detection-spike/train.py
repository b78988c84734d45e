import sys, time, math, json, resource, random
sys.path.insert(0, "/tmp/spike")
import torch, numpy as np
from common import *
name = sys.argv[1]; budget = float(sys.argv[2]); lr = float(sys.argv[3]) if len(sys.argv) > 3 else 1e-3
bs = int(sys.argv[4]) if len(sys.argv) > 4 else 8
tag = sys.argv[5] if len(sys.argv) > 5 else name
torch.set_num_threads(2); torch.manual_seed(0); random.seed(0)
train = make_dataset(300, 1, "train"); test = make_dataset(60, 2, "test")
model = build(name)
params = [p for p in model.parameters() if p.requires_grad]
opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
warm = 30; it = 0; seen = 0; t0 = time.process_time(); w0 = time.time(); log = []
model.train()
while True:
    el = time.process_time() - t0   # CPU-seconds of this process (machine is shared)
    if el > budget: break
    idx = random.sample(range(len(train)), bs)
    imgs, tg = [], []
    for i in idx:
        im, b, l = train[i]; x = to_tensor(im); b = torch.from_numpy(b.copy())
        if random.random() < 0.5:
            x = x.flip(-1); b = torch.stack([W - b[:, 2], b[:, 1], W - b[:, 0], b[:, 3]], 1)
        imgs.append(x); tg.append({"boxes": b, "labels": torch.from_numpy(l)})
    f = min(1.0, (it + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(el / budget, 1)))
    for g in opt.param_groups: g["lr"] = lr * f
    losses = model(imgs, tg); loss = sum(losses.values())
    opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(params, 10.0); opt.step()
    it += 1; seen += bs
    if it % 20 == 0:
        print(f"{name} it{it} t={el:.0f}s loss={loss.item():.3f} " + " ".join(f"{k}={v.item():.3f}" for k, v in losses.items()), flush=True)
train_s = time.process_time() - t0; wall_s = time.time() - w0
c0 = time.process_time(); ap50, ap, infer_s = coco_eval(model, test); infer_s = time.process_time() - c0
res = dict(model=tag, lr=lr, bs=bs, budget_s=budget, iters=it, cpu_s=round(train_s, 1), wall_s=round(wall_s, 1), img_per_s_2cores=round(2 * seen / train_s, 2),
           epochs=round(seen / 300, 1), mAP50=round(ap50, 3), mAP=round(ap, 3), eval_cpu_ms_per_img=round(1000 * infer_s / 60, 1),
           params_M=round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
           maxrss_MB=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
print("RESULT", json.dumps(res), flush=True)
with open("/tmp/spike/results.jsonl", "a") as f: f.write(json.dumps(res) + "\n")
torch.save(model.state_dict(), f"/tmp/spike/{tag}.pt")

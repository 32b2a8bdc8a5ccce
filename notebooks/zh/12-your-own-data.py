# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown] translates="a822d9a7042f"
# # 12 · 你自己的图像：文件夹、TIFF 图像栈与论文的电镜数据
#
# **要你做的：** 迈出每个 U-Net 教程读者都想迈的下一步：用*你自己的*图像训练。你会按人们手头真正有的两种布局写出图像和掩码（mask）
# （一个 PNG 图像文件夹配一个掩码文件夹；以及论文自己的格式：两个多页 TIFF 图像栈），用 `folders.load_folder` 把它们读进来，看看数据集里
# 各种常见的错误分别会得到什么报错，在任意尺寸的图像上用随机裁剪（crop）训练，再像 ISBI 2012 挑战赛那样给结果打分，并与每个模型都必须
# 胜过的基线放在一起比较。
# **要你写的：** `pair_by_name`，把图像与掩码配对——很多自制的数据加载器恰恰在这一步悄无声息地出错。
#
# 这里不下载任何东西：文件都是用课程生成的 `membranes` 数据集在本地造出来的，布局与真实数据完全相同，所以下面的每条命令都可以原封不动地
# 用在真实文件上。

# %%
import os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"

import tempfile
from pathlib import Path

import numpy as np
import matplotlib.pyplot as plt
from PIL import Image

import unet_scratch as us
from unet_scratch import UNet, data, training
from unet_scratch.evaluation import evaluate_images, format_report, predict_classes
from unet_scratch.folders import load_folder

us.set_backend("numba")
workdir = Path(tempfile.mkdtemp(prefix="unet-own-data-"))

# %% [markdown] translates="f8536b7affb4"
# ## 1. 论文的数据：ISBI 2012 电镜图像栈
#
# Ronneberger 等人训练 U-Net，是为了参加 ISBI 2012 挑战赛：在电子显微镜图像中分割（segmentation）神经结构。数据是一个由
# **30 张 512 x 512 像素的切片**组成的图像栈，来自*果蝇*一龄幼虫腹神经索的连续切片透射电子显微镜（ssTEM）图像（Cardona 等，
# PLoS Biology 2010）。训练集是两个多页 TIFF 文件：
#
# | 文件 | 内容 |
# |---|---|
# | `train-volume.tif` | 30 张 8 位灰度切片 |
# | `train-labels.tif` | 30 张标签切片：**255 = 细胞内部，0 = 膜** |
#
# 测试集是另外 30 张切片，标签由组织方保管（提交的结果在他们的服务器上按 warping 误差、Rand 误差和像素误差评分）。论文预测的是*膜*，
# 也就是标签中的暗像素：所以对这份数据，前景是**黑色**（`foreground="black"`，`--foreground black`）。
#
# 我们按同样的布局写一份替身数据：30 幅生成的膜结构图像，标签按 ISBI 的约定反转，存成两个 TIFF 图像栈。

# %%
x, y = data.load("membranes", "train", n=30, size=96)[:2]
volume = [Image.fromarray((x[i, ..., 0] * 255).round().astype(np.uint8)) for i in range(30)]
labels = [Image.fromarray(((1 - y[i, ..., 0]) * 255).astype(np.uint8)) for i in range(30)]   # 0 = membrane
volume[0].save(workdir / "train-volume.tif", save_all=True, append_images=volume[1:])
labels[0].save(workdir / "train-labels.tif", save_all=True, append_images=labels[1:])

em = load_folder(workdir / "train-volume.tif", workdir / "train-labels.tif", foreground="black")
print(len(em), "slices;", em.names[:2], "...")
print("image:", em.images[0].shape, em.images[0].dtype, " mask:", em.masks[0].shape, em.masks[0].dtype,
      "classes", sorted(np.unique(em.masks[0]).tolist()))
print("notes:", em.notes)
print("membrane (class 1) where the label file is black:",
      bool(np.all((em.masks[0] == 1) == (np.asarray(labels[0]) == 0))))

# %% [markdown] translates="209f77cae189"
# ## 2. 一个图像文件夹、一个掩码文件夹，以及加载器必须发现的错误
#
# 另一种常见的布局是两个文件夹，里面的文件同名：`images/cell_01.png` 配 `masks/cell_01.png`（或 `.tif`）。掩码可以是 0/1 或
# 0/255（0/1 的 PNG 在看图软件里一片漆黑，所以人们常存成 0/255），也可以是 K 个类别的类别下标 0..K-1（调色板 PNG 存的正是这个：
# 每个像素都是它颜色表中的一个下标）。
#
# 下面每一种都是数据集真实出错的方式；`load_folder` 遇到每一种都会停下来，给出的信息写明是哪个文件、该怎么办。

# %%
images_dir, masks_dir = workdir / "images", workdir / "masks"
images_dir.mkdir(), masks_dir.mkdir()
for i in range(6):
    Image.fromarray((x[i, ..., 0] * 255).round().astype(np.uint8)).save(images_dir / f"em_{i:02d}.png")
    Image.fromarray((y[i, ..., 0] * 255).astype(np.uint8)).save(masks_dir / f"em_{i:02d}.png")
print(len(load_folder(images_dir, masks_dir)), "pairs read from the folders")


def show_error(make_mistake, undo):
    make_mistake()
    try:
        load_folder(images_dir, masks_dir)
    except (ValueError, FileNotFoundError) as err:
        print("-", str(err).replace(str(workdir), "<workdir>"))
    finally:
        undo()


mask0 = (masks_dir / "em_00.png").read_bytes()
show_error(lambda: (masks_dir / "em_00.png").unlink(),                                   # a mask missing
           lambda: (masks_dir / "em_00.png").write_bytes(mask0))
show_error(lambda: Image.fromarray((y[0, :80, :, 0] * 255).astype(np.uint8)).save(masks_dir / "em_00.png"),
           lambda: (masks_dir / "em_00.png").write_bytes(mask0))                        # another size
show_error(lambda: ((masks_dir / "em_00.png").unlink(),                                  # saved as JPEG
                    Image.fromarray((y[0, ..., 0] * 255).astype(np.uint8)).save(masks_dir / "em_00.jpg")),
           lambda: ((masks_dir / "em_00.jpg").unlink(), (masks_dir / "em_00.png").write_bytes(mask0)))
show_error(lambda: Image.fromarray(np.clip(y[0, ..., 0] * 255 + np.random.default_rng(0).integers(-4, 5, (96, 96)),
                                           0, 255).astype(np.uint8)).save(masks_dir / "em_00.png"),
           lambda: (masks_dir / "em_00.png").write_bytes(mask0))                        # resized or re-encoded

# %% [markdown] translates="a229edc04775"
# 为什么 JPEG 格式的掩码会被直接拒绝：JPEG 对 8 x 8 的块做有损压缩，在 0/255 掩码的每条边缘附近都会产生介于两者之间的值。存成 JPEG
# 的掩码原本只有两个值，现在却有几十个不同的值；加载器如果把每个值都当成一个类别，就会得到几十个类别（这是 U-Net 代码仓库里最常见的
# 问题之一）。补救办法是取一个阈值（`mask > 127`），并从此改用 PNG。

# %%
Image.fromarray((y[0, ..., 0] * 255).astype(np.uint8)).save(workdir / "mask.jpg", quality=90)
jpeg_mask = np.asarray(Image.open(workdir / "mask.jpg"))
print("distinct values: PNG 2, JPEG", len(np.unique(jpeg_mask)))
print("threshold rescues it:", bool(np.array_equal(jpeg_mask > 127, y[0, ..., 0] > 0.5)))

# %% [markdown] translates="bd0e399c67ab"
# ## 3. 练习：按文件名配对图像与掩码
#
# 配对看上去简单得不会出错，可很多自制的加载器偏偏错在这里：它们把两个文件夹排好序的文件列表 `zip` 起来，这在某个文件夹比另一个多出
# 一个文件之前一直是对的。要按**主干名**（stem，即去掉扩展名的文件名：`cell_1.tif` 配 `cell_1.png`）配对，顺序与图像列表相同；
# 遇到没有掩码的图像，就抛出写明这幅图像的 `ValueError`：悄悄丢掉或配错一幅图像，比报错更糟。
#
# 算例：`pair_by_name(["b.png", "a.png"], ["a.png", "b.png"])` 的结果是 `[("b.png", "b.png"), ("a.png", "a.png")]`。

# %%
from unet_scratch.exercises.ch12 import check_pair_by_name


def pair_by_name(image_names, mask_names):
    """image_names, mask_names: lists of file names -> [(image, mask), ...] in image_names' order, paired by
    stem (PurePath(name).stem); raises ValueError naming an image without a mask."""
    ### BEGIN SOLUTION
    by_stem = {Path(m).stem: m for m in mask_names}
    pairs = []
    for name in image_names:
        stem = Path(name).stem
        if stem not in by_stem:
            raise ValueError(f"image {name} has no mask (expected {stem}.png or {stem}.tif)")
        pairs.append((name, by_stem[stem]))
    return pairs
    ### END SOLUTION


check_pair_by_name(pair_by_name);

# %% [markdown] translates="1fb42f961fd5"
# ## 4. 在任意尺寸的图像上训练：随机裁剪
#
# 真实图像很少恰好是网络的输入尺寸（ISBI 的切片是 512 x 512；显微镜的视野往往更大，而且各个文件不一样大）。`training.fit(..., crop=64)`
# 在每一步从每幅图像中随机取一个 64 x 64 的窗口来训练，窗口由 (seed, epoch, step) 决定的随机数生成器抽取，所以中断的训练恢复后
# 用的正是同样的窗口；验证时则在每幅验证图像上按网格铺开的切片上进行。这里：24 张切片用于训练，6 张留作验证，一个小 U-Net，
# 训练 25 轮（epoch）（用 Numba 后端（backend）只要几秒钟）。

# %%
train_set = (em.images[:24], em.masks[:24])
val_set = (em.images[24:], em.masks[24:])
model = UNet((64, 64, 1), base_filters=8, depth=3, dropout=0, kernel_initializer="he_normal", seed=0)
history = training.fit(model, train_set, val_set, epochs=25, batch_size=4, crop=64, augment="flip",
                       learning_rate=2e-3, seed=0, verbose=0)
print("epochs:", len(history.epoch), " validation Dice rose above 0.7:", history.history["val_dice"][-1] > 0.7)

# %% [markdown] translates="578ce7ac957f"
# ## 5. 像挑战赛那样打分，并与基线对照
#
# 只看一个 Dice 数值说明不了多少：在电镜图像上，对灰度值取一个简单的全局阈值就已经能找出大部分膜，因为膜是暗的。所以
# `evaluate_images` 对每张留出的切片做整体预测（用重叠切片（overlap-tile），与第 10 章相同），并在模型旁边报告原始图像的
# **最佳单一全局阈值**，用同样的方式打分：
#
# - **像素误差**（pixel error）：被标错的像素所占的比例（即 ISBI 2012 的像素误差）；
# - 每个类别（细胞内部、膜）的 **Dice 系数**（Dice coefficient）和**交并比**（IoU）；
# - **adapted Rand 误差**（adapted Rand error）：预测的膜所围成的*区域*与真实细胞吻合得有多好（1 减去在真实细胞的像素上计算的
#   Rand F 值：在同属一个真实细胞的所有像素对中，预测也把其中多少对放进同一个区域，反过来也一样；`metrics.adapted_rand_error`）。
#   漏掉一个膜像素就可能让两个细胞连成一个，这在像素误差上几乎不算什么，在 Rand 误差上却代价很大：这个分割结果能不能用来追踪神经元，要看的正是这个分数。

# %%
# NBVAL_IGNORE_OUTPUT
report = evaluate_images(model, val_set[0], val_set[1], regions_of=0)     # regions: the cells (class 0)
print(format_report(report, ["cell", "membrane"]))

# %%
m, b = report["model"], report["baseline"]
print("the model beats the threshold baseline on pixel error:", m["pixel_error"] < b["pixel_error"])
print("... and on the adapted Rand error:", m["adapted_rand_error"] < b["adapted_rand_error"])

# %%
i = 0
image, truth = val_set[0][i][..., 0], val_set[1][i]
pred = predict_classes(model, val_set[0][i])
base = (image < b["threshold"]).astype(np.uint8)
fig, ax = plt.subplots(1, 4, figsize=(12, 3.3), dpi=100)
for a, (img, title) in zip(ax, [(image, "held-out slice"), (truth, "true membranes (yellow)"),
                                (pred, "U-Net, 25 epochs"), (base, "best global threshold")]):
    a.imshow(img, cmap="gray" if a is ax[0] else "viridis", vmin=0, vmax=1)
    a.set_title(title, fontsize=10)
    a.axis("off")
fig.suptitle("The threshold finds dark pixels, the U-Net finds walls: its membranes close the cells",
             fontsize=11, y=1.02)
fig.tight_layout()
plt.show()

# %% [markdown] translates="9ede5e9ae5ed"
# ## 6. 用命令行做同样的事
#
# 在真实的 ISBI 文件上（从挑战赛的网页下载 `train-volume.tif` 和 `train-labels.tif`；本课程从不下载任何东西），或者在你自己的
# 文件夹上：
#
# ```bash
# python -m unet_scratch train --images train-volume.tif --masks train-labels.tif --foreground black \
#     --size 128 --epochs 40 --backend numba --out runs/isbi        # 留出最后 20% 的切片做验证
# python -m unet_scratch evaluate --weights runs/isbi/weights.npz --images my-test-images \
#     --masks my-test-masks --foreground black                       # 上面那张表，任何文件夹都行
# python -m unet_scratch predict --weights runs/isbi/weights.npz --input new-images/ --output masks/
# ```
#
# `train` 结束时会为它的验证切片打印第 5 节的那张表（并写入 `validation.json`）；`--classes K` 在类别下标掩码上训练一个 softmax 输出层；
# `--channels 3` 接受 RGB 图像（或者用 `--grayscale` 把它们转成灰度）。下面在替身数据上、在当前进程内运行：

# %%
# NBVAL_IGNORE_OUTPUT
from unet_scratch.__main__ import main
code = main(["train", "--images", workdir / "train-volume.tif", "--masks", workdir / "train-labels.tif",
             "--foreground", "black", "--size", "64", "--base-filters", "8", "--depth", "3", "--epochs", "25",
             "--out", workdir / "run"])

# %%
print("exit status:", code, " files:", sorted(p.name for p in (workdir / "run").iterdir() if not p.name.startswith(".")))

# %% [markdown] translates="ff860236ffd7"
# 对真实的图像栈能期待什么：论文的完整网络在 GPU 上训练了大约十个小时，配合大量的弹性形变（elastic deformation）数据增强，在挑战赛的
# 测试集上达到了 0.0611 的像素误差和 0.0382 的 Rand 误差。用小网络在 CPU 上跑几分钟，远远达不到这个水平；而基线那张表会如实告诉你，
# 你离一个简单的阈值有多远。
#
# ## 练习
#
# 1. `pair_by_name`：按文件的主干名配对图像与掩码，拒绝没有掩码的图像（检查能认出：按位置配对、连扩展名一起比较文件名、按前缀匹配）。

# %%
import shutil
shutil.rmtree(workdir, ignore_errors=True)

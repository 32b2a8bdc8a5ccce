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

# %% [markdown] translates="ccc090c38f0e"
# # 06b · 自带模型：别人写的 Keras U-Net，以及一个 PyTorch 孪生网络
#
# 第 06 章把从零实现的 U-Net 与本库自己搭的 Keras 模型对照，那个模型的每一层都与从零实现中的对应层同名。真实世界里的 Keras U-Net 是别人写的，层名是 Keras 自动起的（`conv2d`、`conv2d_1`……），而且常常带着一些自己的小差别。本章引入两个这样的模型：
#
# **要你搭的：** 网络本身没有新东西；你要导入
# 1. 原文的 `unet(input_shape)`，**照原文印出的样子**原样粘贴，用 `from_keras` 导入从零实现的 `UNet`；`from_keras` 按模型的**结构**来读，不看层名；
# 2. **zhixuhao/unet** 的 `unet()`：被 fork 最多的 Keras U-Net，原文代码沿用的就是它的结构。它与原文的三处不同都是 `UNet` 的选项；它还需要一个新运算，最近邻上采样（nearest-neighbour upsampling），你要写出这个运算的**反向传播**（backpropagation），这就是本章的练习；
# 3. 同一个网络的 **PyTorch** 版 `nn.Module`，权重经过布局转换搬过去（转换画在一张图里）。
#
# **要你验证的：** 每一对模型算出的数都相同：float32 下，每一层的输出和每个权重的梯度都一致（第 06 章的数值一致报告）；float64 下，输出和全部梯度一致到舍入误差。还要弄清：zhixuhao 的上采样步骤在常数输入上为什么没有棋盘伪影（checkerboard artifact）（理论见第 03 章）；复现不了原模型的权重搬运会被拒绝；权重搬到 PyTorch 再搬回来，逐位不变。
#
# 全宽的网络（3100 万个权重）在 $32 \times 32$ 的输入上运行，所以每项检查只需几秒。

# %%
import os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"   # quiet TensorFlow (set before it is imported)

import gc
import textwrap

import numpy as np
import matplotlib.pyplot as plt
from unet_scratch import UNet, ops
from unet_scratch.model import OPTION_DEFAULTS
from unet_scratch.keras_ref import (import_tensorflow, import_keras, from_keras, to_keras, compare,
                                    read_keras_unet, build_keras_unet)
from unet_scratch.torch_ref import import_torch, to_torch, from_torch, compare_torch, lockstep_torch
tf = import_tensorflow(); keras = import_keras(); torch = import_torch()
torch.set_num_threads(1)         # small tensors: PyTorch's thread pool costs more than it saves on them

keras.utils.set_random_seed(0)   # Keras's initial weights, reproducibly
SIZE = 32                        # divisible by 2**4 = 16, as a depth-4 'same' U-Net needs
x = np.random.default_rng(0).random((1, SIZE, SIZE, 1), dtype=np.float32)   # the probe image of every comparison


def summary(report, fwd_bound=1e-5, grad_bound=1e-4):
    """A parity report as lines that read the same on every machine: counts, and booleans against bounds
    well above the errors seen (the raw errors are printed in a cell the tests do not compare)."""
    fwd = [r for r in report.rows if r.kind == "forward"]
    grd = [r for r in report.rows if r.kind == "gradient"]
    return {"passed": report.passed,
            f"{len(fwd)} layer outputs within {fwd_bound:.0e} (max abs)": max(r.max_abs for r in fwd) < fwd_bound,
            f"{len(grd)} weight gradients within {grad_bound:.0e} (relative)": max(r.rel for r in grd) < grad_bound}


def show(d):
    for k, v in d.items():
        print(f"{k}: {v}")


# %% [markdown] translates="828304a679e7"
# ## 1. 原文的函数，原样粘贴
#
# 原文 5.2 节（[它的 Keras U-Net](../../book/references.md#source-article-keras)）定义了下面这个模型；其中的中文注释（"编码器部分"、"解码器部分"、"输出层"）是原文自带的。一个字也没有改。它在 Keras 3 上原样就能搭起来，因为 TensorFlow 2.21 的 `tensorflow.keras` *就是* Keras 3。

# %%
import tensorflow as tf
from tensorflow.keras import layers

def unet(input_shape):
    inputs = layers.Input(shape=input_shape)

    # 编码器部分
    conv1 = layers.Conv2D(64, 3, activation='relu', padding='same')(inputs)
    conv1 = layers.Conv2D(64, 3, activation='relu', padding='same')(conv1)
    pool1 = layers.MaxPooling2D(pool_size=(2, 2))(conv1)

    conv2 = layers.Conv2D(128, 3, activation='relu', padding='same')(pool1)
    conv2 = layers.Conv2D(128, 3, activation='relu', padding='same')(conv2)
    pool2 = layers.MaxPooling2D(pool_size=(2, 2))(conv2)

    conv3 = layers.Conv2D(256, 3, activation='relu', padding='same')(pool2)
    conv3 = layers.Conv2D(256, 3, activation='relu', padding='same')(conv3)
    pool3 = layers.MaxPooling2D(pool_size=(2, 2))(conv3)

    conv4 = layers.Conv2D(512, 3, activation='relu', padding='same')(pool3)
    conv4 = layers.Conv2D(512, 3, activation='relu', padding='same')(conv4)
    drop4 = layers.Dropout(0.5)(conv4)
    pool4 = layers.MaxPooling2D(pool_size=(2, 2))(drop4)

    conv5 = layers.Conv2D(1024, 3, activation='relu', padding='same')(pool4)
    conv5 = layers.Conv2D(1024, 3, activation='relu', padding='same')(conv5)
    drop5 = layers.Dropout(0.5)(conv5)

    # 解码器部分
    up6 = layers.Conv2DTranspose(512, 2, strides=(2, 2), padding='same')(drop5)
    up6 = layers.concatenate([up6, drop4])
    conv6 = layers.Conv2D(512, 3, activation='relu', padding='same')(up6)
    conv6 = layers.Conv2D(512, 3, activation='relu', padding='same')(conv6)

    up7 = layers.Conv2DTranspose(256, 2, strides=(2, 2), padding='same')(conv6)
    up7 = layers.concatenate([up7, conv3])
    conv7 = layers.Conv2D(256, 3, activation='relu', padding='same')(up7)
    conv7 = layers.Conv2D(256, 3, activation='relu', padding='same')(conv7)

    up8 = layers.Conv2DTranspose(128, 2, strides=(2, 2), padding='same')(conv7)
    up8 = layers.concatenate([up8, conv2])
    conv8 = layers.Conv2D(128, 3, activation='relu', padding='same')(up8)
    conv8 = layers.Conv2D(128, 3, activation='relu', padding='same')(conv8)

    up9 = layers.Conv2DTranspose(64, 2, strides=(2, 2), padding='same')(conv8)
    up9 = layers.concatenate([up9, conv1])
    conv9 = layers.Conv2D(64, 3, activation='relu', padding='same')(up9)
    conv9 = layers.Conv2D(64, 3, activation='relu', padding='same')(conv9)

    # 输出层
    outputs = layers.Conv2D(1, 1, activation='sigmoid')(conv9)

    model = tf.keras.Model(inputs=[inputs], outputs=[outputs])
    return model


# %% [markdown] translates="a5ebee3a90fe"
# 它的各层用的是 Keras 自动起的名字，从零实现的模型一个也不用。`from_keras` 不看名字。它沿着模型的连线（`km.get_config()` 里的 inbound nodes，也就是 `km.save` 写下的那张图）从输入走到输出，按每一层在网络中的作用认出它：编码器（encoder）的每一层有两个 $3 \times 3$ 的 ReLU 卷积（convolution）、一个可有可无的 Dropout 和一个 $2 \times 2$ 的池化（pooling），池化的输入同时作为跳跃连接（skip connection）送到对面；底部再有两个卷积；解码器（decoder）的每一层有一个上采样步骤、与这一层跳跃连接的拼接（concatenation），以及两个卷积；最后是 $1 \times 1$ 的输出层。走完这一趟，它就读出了 `UNet` 的构造参数，也知道了哪个 Keras 层对应从零实现的哪一层；然后它复制权重，并在交还模型之前让两个模型在一幅探测图像上各运行一次（第 4 节）。`read_keras_unet` 显示这一趟找到了什么。

# %%
km = unet((SIZE, SIZE, 1))
model = from_keras(km)
print(model.get_config())
print(f"{model.count_params():,} parameters; the Keras model: {km.count_params():,}")
structure = read_keras_unet(km)
for name in ["enc1_conv1", "enc4_drop", "enc4_pool", "dec4_upconv", "dec4_concat", "dec1_conv2", "head"]:
    print(f"scratch {name:<12} <- Keras {structure.layers[name]}")

# %% [markdown] translates="b99e2fde519d"
# 从零实现的参数保留从零实现的名字，但按 **Keras 的变量顺序**排列，所以从零实现的第 $k$ 个权重就是 `km.trainable_variables` 的第 $k$ 个（`tf.GradientTape` 给出的梯度也就按位置与从零实现的梯度配对）：

# %%
pairs = list(zip(model.params, km.trainable_variables))
print(len(pairs), "pairs:", [(a, b.path) for a, b in pairs[:2]], "...", (pairs[-1][0], pairs[-1][1].path))
print("every pair has the same shape and the same numbers:",
      all(model.params[a].shape == tuple(b.shape) and np.array_equal(model.params[a], b.numpy()) for a, b in pairs))

# %% [markdown] translates="605f576e54a5"
# **算的是同一个东西吗？** 在 float32 下，第 06 章的数值一致报告（parity report）用在这个模型上，和用在本库自己的模型上一样：它比较每一层的输出，以及每个权重的梯度（从零实现的反向传播喂的是 Keras 自己的激活值）；报告的每一行都用从零实现的名字。原始误差的最后几位数字因机器而异，所以测试不比较下面第一个单元格的输出；第二个单元格打印的是稳定的内容。

# %%
report = compare(model, km, x)

# %%
# NBVAL_IGNORE_OUTPUT
print(report.verdict())

# %%
show(summary(report))

# %% [markdown] translates="014f8a1ae5f4"
# **在 float64 下**，舍入误差再也遮不住什么，两边应当一致到约 $10^{-15}$。原文的代码没有 `dtype` 参数：只有默认的 dtype 策略（各层的权重和算术）和 `floatx`（`Input` 层）都设为 float64 时，Keras 才用 float64 搭建它；`from_keras` 让从零实现的模型采用 Keras 模型的 dtype。对一个固定的随机数组 $g$，损失 $L = \mathrm{mean}(y \odot g)$ 用到了每一个权重；从零实现一边反向传播 $g / \text{size}$，Keras 一边由 `tf.GradientTape` 自己求导。

# %%
def in_float64(build):
    """Build a Keras model in float64 (layers and Input), import it, and measure both sides' forward and
    weight gradients on the loss mean(y * g). Returns (scratch model, forward max abs error, worst
    relative weight-gradient error, number of weights)."""
    keras.config.set_dtype_policy("float64"); keras.config.set_floatx("float64")
    try:
        km64 = build()
    finally:
        keras.config.set_dtype_policy("float32"); keras.config.set_floatx("float32")
    model64 = from_keras(km64)
    x64 = np.random.default_rng(1).random((1, SIZE, SIZE, 1))
    g = np.random.default_rng(2).standard_normal((1, SIZE, SIZE, 1))
    y = model64.forward(x64)
    model64.backward(g / g.size)
    with tf.GradientTape() as tape:
        y_k = km64([x64], training=False)
        loss = tf.reduce_mean(y_k * g)
    grads = tape.gradient(loss, km64.trainable_variables)      # paired with model64.grads by position
    errors = [np.linalg.norm(a - b.numpy()) / np.linalg.norm(b.numpy())
              for a, b in zip(model64.grads.values(), grads)]
    return model64, float(np.max(np.abs(y - y_k.numpy()))), max(errors), len(errors)

model64, fwd64, grad64, n64 = in_float64(lambda: unet((SIZE, SIZE, 1)))
print("scratch dtype:", model64.dtype)
print("forward within 1e-12 (max abs):", fwd64 < 1e-12)
print(f"all {n64} weight gradients within 1e-10 (relative):", grad64 < 1e-10)

# %%
# NBVAL_IGNORE_OUTPUT
print(f"float64: forward max abs error {fwd64:.1e}, worst weight-gradient relative error {grad64:.1e}")

# %% [markdown] translates="5421a4a56917"
# 另外两种导入方式，这里不运行：用 `km.save("x.keras")` 保存的模型（或 `.h5` 文件）按路径导入，`from_keras("x.keras")`（不加载优化器（optimizer），所以用 `Adam(lr=...)` 编译过的旧 Keras 2 文件也没问题）；用 `unet((None, None, 1))` 搭出的全卷积网络（fully convolutional network）按你选的尺寸导入，`from_keras(km, input_shape=(128, 128, 1))`。*不属于*这一族 U-Net 的模型会被拒绝，并指出第一个对不上的层以及原因（一个 `BatchNormalization`、一个 `'elu'` 激活……）。

# %%
del model64
gc.collect();

# %% [markdown] translates="f2e4ae96b991"
# ## 2. zhixuhao 的 U-Net，以及先放大再卷积为什么没有棋盘伪影
#
# [zhixuhao/unet](https://github.com/zhixuhao/unet) 的 `model.py` 就是原文代码所沿用的那个 Keras U-Net，两者有三处不同，每一处都是 `UNet` 的一个选项：
#
# | zhixuhao/unet | `UNet` 的选项 | 原文 |
# | --- | --- | --- |
# | `Conv2D(512, 2, activation='relu', padding='same')(UpSampling2D(size=(2, 2))(drop5))` | `upsampling="resize_conv"` | `Conv2DTranspose(512, 2, strides=(2, 2), padding='same')`（`"transpose"`） |
# | `concatenate([drop4, up6], axis=3)`：跳跃连接在前 | `concat_order="skip_first"` | `concatenate([up6, drop4])`（`"up_first"`） |
# | $1 \times 1$ sigmoid 之前的 `Conv2D(2, 3, activation='relu', padding='same')` | `head_hidden=2` | 没有（`0`） |
#
# 此外，除输出层外的每个卷积都用 `kernel_initializer='he_normal'`。下面是它的 `unet()`，改名为 `zhixuhao_unet`，以免覆盖原文的 `unet`；Keras 3 逼着我们改了两处：文件里的星号导入（`from keras.layers import *` 等）逐一写了出来，`Adam(lr = 1e-4)` 改成了 `Adam(learning_rate = 1e-4)`（Keras 3 不接受 `lr`：第 06 章追查到，这种写法正出自这个仓库）。每一次层调用都与原版相同，顺序也相同。

# %%
from keras.layers import Conv2D, Dropout, Input, MaxPooling2D, UpSampling2D, concatenate
from keras.models import Model
from keras.optimizers import Adam

def zhixuhao_unet(pretrained_weights = None,input_size = (256,256,1)):
    inputs = Input(input_size)
    conv1 = Conv2D(64, 3, activation = 'relu', padding = 'same', kernel_initializer = 'he_normal')(inputs)
    conv1 = Conv2D(64, 3, activation = 'relu', padding = 'same', kernel_initializer = 'he_normal')(conv1)
    pool1 = MaxPooling2D(pool_size=(2, 2))(conv1)
    conv2 = Conv2D(128, 3, activation = 'relu', padding = 'same', kernel_initializer = 'he_normal')(pool1)
    conv2 = Conv2D(128, 3, activation = 'relu', padding = 'same', kernel_initializer = 'he_normal')(conv2)
    pool2 = MaxPooling2D(pool_size=(2, 2))(conv2)
    conv3 = Conv2D(256, 3, activation = 'relu', padding = 'same', kernel_initializer = 'he_normal')(pool2)
    conv3 = Conv2D(256, 3, activation = 'relu', padding = 'same', kernel_initializer = 'he_normal')(conv3)
    pool3 = MaxPooling2D(pool_size=(2, 2))(conv3)
    conv4 = Conv2D(512, 3, activation = 'relu', padding = 'same', kernel_initializer = 'he_normal')(pool3)
    conv4 = Conv2D(512, 3, activation = 'relu', padding = 'same', kernel_initializer = 'he_normal')(conv4)
    drop4 = Dropout(0.5)(conv4)
    pool4 = MaxPooling2D(pool_size=(2, 2))(drop4)

    conv5 = Conv2D(1024, 3, activation = 'relu', padding = 'same', kernel_initializer = 'he_normal')(pool4)
    conv5 = Conv2D(1024, 3, activation = 'relu', padding = 'same', kernel_initializer = 'he_normal')(conv5)
    drop5 = Dropout(0.5)(conv5)

    up6 = Conv2D(512, 2, activation = 'relu', padding = 'same', kernel_initializer = 'he_normal')(UpSampling2D(size = (2,2))(drop5))
    merge6 = concatenate([drop4,up6], axis = 3)
    conv6 = Conv2D(512, 3, activation = 'relu', padding = 'same', kernel_initializer = 'he_normal')(merge6)
    conv6 = Conv2D(512, 3, activation = 'relu', padding = 'same', kernel_initializer = 'he_normal')(conv6)

    up7 = Conv2D(256, 2, activation = 'relu', padding = 'same', kernel_initializer = 'he_normal')(UpSampling2D(size = (2,2))(conv6))
    merge7 = concatenate([conv3,up7], axis = 3)
    conv7 = Conv2D(256, 3, activation = 'relu', padding = 'same', kernel_initializer = 'he_normal')(merge7)
    conv7 = Conv2D(256, 3, activation = 'relu', padding = 'same', kernel_initializer = 'he_normal')(conv7)

    up8 = Conv2D(128, 2, activation = 'relu', padding = 'same', kernel_initializer = 'he_normal')(UpSampling2D(size = (2,2))(conv7))
    merge8 = concatenate([conv2,up8], axis = 3)
    conv8 = Conv2D(128, 3, activation = 'relu', padding = 'same', kernel_initializer = 'he_normal')(merge8)
    conv8 = Conv2D(128, 3, activation = 'relu', padding = 'same', kernel_initializer = 'he_normal')(conv8)

    up9 = Conv2D(64, 2, activation = 'relu', padding = 'same', kernel_initializer = 'he_normal')(UpSampling2D(size = (2,2))(conv8))
    merge9 = concatenate([conv1,up9], axis = 3)
    conv9 = Conv2D(64, 3, activation = 'relu', padding = 'same', kernel_initializer = 'he_normal')(merge9)
    conv9 = Conv2D(64, 3, activation = 'relu', padding = 'same', kernel_initializer = 'he_normal')(conv9)
    conv9 = Conv2D(2, 3, activation = 'relu', padding = 'same', kernel_initializer = 'he_normal')(conv9)
    conv10 = Conv2D(1, 1, activation = 'sigmoid')(conv9)

    model = Model(inputs = inputs, outputs = conv10)

    model.compile(optimizer = Adam(learning_rate = 1e-4), loss = 'binary_crossentropy', metrics = ['accuracy'])

    #model.summary()

    if(pretrained_weights):
        model.load_weights(pretrained_weights)

    return model


# %% [markdown] translates="f68b32f9b587"
# 同一个 `from_keras` 也能读它；它找到的配置与原文的模型恰好有四处不同：表里的三个选项，加上初始化方式：

# %%
kz = zhixuhao_unet(input_size=(SIZE, SIZE, 1))
mz = from_keras(kz)
article = {**OPTION_DEFAULTS, **model.get_config()}     # get_config leaves out options at their defaults
theirs = {**OPTION_DEFAULTS, **mz.get_config()}
for key in theirs:
    if article[key] != theirs[key]:
        print(f"{key:<20} article: {article[key]!r:<18} zhixuhao: {theirs[key]!r}")
report_z = compare(mz, kz, x)

# %%
# NBVAL_IGNORE_OUTPUT
print(report_z.verdict())

# %%
show(summary(report_z, fwd_bound=1e-4))

# %% [markdown] translates="13ba578eefd7"
# （He 正态初始化让 zhixuhao 模型的激活值比原文用 Glorot 初始化时大，float32 的绝对舍入误差也随之变大，所以上面的稳定结论要求 $10^{-4}$ 而不是 $10^{-5}$；相对于激活值的大小，两个模型的误差都约为 $10^{-6}$，远在报告的容差之内。在 float64 下两边一致到约 $10^{-15}$，与原文的模型一样：`tests/test_keras_byom.py` 检查了这一点。）手里有 zhixuhao 训练好的 `unet_membrane.hdf5` 的读者，可以用 `from_keras(zhixuhao_unet(pretrained_weights="unet_membrane.hdf5"))` 在从零实现的网络上运行它（用 Keras 3 写出的权重文件试过；手头没有 Keras 2 写出的文件）。
#
# 对从零实现的库来说，有两样东西是新的：最近邻上采样（`ops.upsample2d`：每个像素复制成一个 $2 \times 2$ 块；它的反向传播就是本章的练习），以及 $2 \times 2$ 的 `'same'` 卷积。偶数大小的卷积核（kernel）无法居中：TensorFlow 在前面填充（padding）$\lfloor (k-1)/2 \rfloor = 0$ 个像素，其余的 $1$ 个放在后面（下方和右侧），从零实现的运算也是这样。
#
# ### 棋盘伪影
#
# [第 03 章](03-transposed-convolution.ipynb)（第 5 节）讲过其中的道理：$2 \times 2$、步幅（stride）为 2 的转置卷积（transposed convolution）对每个输入像素盖一次卷积核的印记，印记并排铺开、互不重叠，所以每个 $2 \times 2$ 块中位置 $(a, b)$ 上的输出像素，就是输入像素乘以卷积核的抽头 $w[a, b]$（再对通道（channel）求和）。不论输入是什么，每个块的四个位置都乘上四个不同的权重：这是一个周期为 2 的固定图案，只要各抽头不相等，它就显现为棋盘格（Odena、Dumoulin 和 Olah，"Deconvolution and Checkerboard Artifacts"，*Distill*，2016）。先放大再卷积则先把每个像素复制到它的块里；随后的 $2 \times 2$ 卷积在**每一个**输出像素上都用到**全部四个**抽头，作用在像素自身或邻居的副本上，所以没有哪个量与像素在块中的位置绑定，常数输入得到的就是常数输出。
#
# 下面取我们刚导入的两个模型，各用最后一个上采样步骤（`dec1_upconv`，输入 128 个通道，输出 64 个，权重是 Keras 随机初始化的），以从零实现的运算作用在一个**常数**输入（全为 1）上：

# %%
flat = np.ones((1, 8, 8, 128), dtype=np.float32)           # no pattern at all in the input
w_t, b_t = model.params["dec1_upconv/kernel"], model.params["dec1_upconv/bias"]   # (2, 2, 64, 128): out, in
w_r, b_r = mz.params["dec1_upconv/kernel"], mz.params["dec1_upconv/bias"]         # (2, 2, 128, 64): in, out
transposed = ops.conv2d_transpose(flat, w_t, b_t, strides=2, padding="same")[0]
resized = np.maximum(ops.conv2d(ops.upsample2d(flat, 2)[0], w_r, b_r, padding="same")[0], 0)   # ReLU fused
print("output shapes:", transposed.shape, resized.shape)


def block_pattern(y):
    """(N, 2H, 2W, C) -> (C, 2, 2): the mean of each of the 4 positions in a 2x2 block, per channel, over
    the image without its last two rows and columns (the last one meets the 2x2 'same' conv's padding;
    leaving out two keeps whole 2x2 blocks)."""
    inner = y[0, :-2, :-2, :].astype(np.float64)
    return np.stack([[inner[a::2, b::2].mean(axis=(0, 1)) for b in (0, 1)] for a in (0, 1)]).transpose(2, 0, 1)


for name, y in (("transposed conv (the article)", transposed), ("upsample + conv (zhixuhao)", resized)):
    inner = y[0, :-2, :-2, :]
    varies = np.ptp(inner, axis=(0, 1)) > 1e-6 * np.abs(inner).max()
    print(f"{name:<30} channels that are not flat away from the border: {int(varies.sum())} of {y.shape[-1]}")
period2 = block_pattern(transposed)
tiled = np.tile(period2, (1, 7, 7)).transpose(1, 2, 0)         # 7 x 7 blocks: the 14 x 14 compared
print("the transposed conv's output is its 2x2 block pattern repeated:", np.allclose(transposed[0, :-2, :-2, :], tiled, atol=1e-6))

# %% [markdown] translates="113c6cfcf4cc"
# 图中画出两者的第 0 个输出通道。两幅图的颜色范围一样宽（各自的均值 $\pm$ 同样的半宽），所以同样的色差代表同样的数值差；右边的图各画出一行，减去了这一行的均值。

# %%
c = 0
half = float(np.abs(transposed[0, :, :, c] - transposed[0, :, :, c].mean()).max())
fig, ax = plt.subplots(1, 3, figsize=(12, 3.8), dpi=100, layout="constrained",
                       gridspec_kw={"width_ratios": [1, 1, 1.3]})
for a, (title, y) in zip(ax, [("transposed conv (the article):\na 2x2 tile repeated", transposed),
                              ("upsample + 2x2 conv (zhixuhao):\nflat but for the last row and column", resized)]):
    img = y[0, :, :, c]
    im = a.imshow(img, cmap="viridis", vmin=img.mean() - half, vmax=img.mean() + half)
    a.set_title(title, fontsize=9)
    a.set_xlabel("output column (pixels)"); a.set_ylabel("output row (pixels)")
    fig.colorbar(im, ax=a, shrink=0.8, label="output value")
row = 7
ax[2].plot(transposed[0, row, :, c] - transposed[0, row, :, c].mean(), "o-", ms=4,
           color=plt.cm.viridis(0.2), label="transposed conv")
ax[2].plot(resized[0, row, :, c] - resized[0, row, :, c].mean(), "s-", ms=4,
           color=plt.cm.viridis(0.75), label="upsample + conv")
ax[2].set_xlabel("output column (pixels)"); ax[2].set_ylabel("output minus its row's mean")
ax[2].set_title(f"row {row}: the transposed conv alternates with period 2", fontsize=9)
ax[2].set_ylim(-1.3 * half, 1.6 * half)
ax[2].legend(fontsize=8, loc="upper center", ncol=2)
fig.suptitle("A flat input, output channel 0: the transposed convolution paints its kernel's pattern, "
             "resize-then-convolve does not", fontsize=10)
plt.show()

# %% [markdown] translates="8df12c19c288"
# 训练可以让转置卷积的四个抽头在需要平滑输出的地方取得一致；先放大再卷积的上采样步骤则从一开始就没有这个图案，也就无须把它"学掉"。（zhixuhao 的输出层还有这个仓库另一个有名的问题：sigmoid 之前的 `Conv2D(2, 3, activation='relu')` 只有两个通道，一旦两个都"死掉"（输入处处为负），输出就是 $\sigma(b)$，处处同一个灰度：这就是它的 issue 列表里常见的"输出全黑"。）
#
# ## 3. 练习：最近邻上采样的反向传播
#
# `UpSampling2D(2)` 把每个输入像素复制成一个 $2 \times 2$ 块：
# $$y_{n,i,j,c} = x_{n,\lfloor i/2 \rfloor,\lfloor j/2 \rfloor,c}, \qquad x: (N, H, W, C) \;\to\; y: (N, 2H, 2W, C).$$
# 每个 $x$ 像素被它所在块中的四个 $y$ 像素读取，权重都是 1，所以按链式法则（chain rule），它的梯度是这四个梯度之**和**（复制的伴随（adjoint）就是求和）：
# $$\frac{\partial L}{\partial x_{n,p,q,c}} = \sum_{a=0}^{1}\sum_{b=0}^{1} \frac{\partial L}{\partial y_{n,2p+a,2q+b,c}}.$$
#
# 算例，一幅图像、一个通道：$4 \times 6$ 的梯度 `dy` 逐行存放 $0, 1, \dots, 23$，得到 $2 \times 3$ 的 `dx`
# $$\begin{pmatrix} 0 & 1 & 2 & 3 & 4 & 5\\ 6 & 7 & 8 & 9 & 10 & 11\\ 12 & 13 & 14 & 15 & 16 & 17\\ 18 & 19 & 20 & 21 & 22 & 23 \end{pmatrix}
# \;\to\; \begin{pmatrix} 0+1+6+7 & 2+3+8+9 & 4+5+10+11\\ 12+13+18+19 & \dots & \dots \end{pmatrix}
# = \begin{pmatrix} 14 & 22 & 30\\ 62 & 70 & 78 \end{pmatrix}.$$
#
# **练习。** 写出 `upsample_backward(dy)`：`dy` $(N, 2H, 2W, C)$ $\to$ `dx` $(N, H, W, C)$。先写朴素的版本（对 `dy` 的像素做两重循环，把每个值加到 `dx[:, i // 2, j // 2, :]` 上），再写快的版本：把 `dy` 变形为 $(N, H, 2, W, 2, C)$，其中第 2、4 轴遍历块内的位置，再对这两个轴求和。检查与本库的 `ops.upsample2d_backward` 对照，并能认出这些典型错误：每个块只取一个像素（`dy[:, ::2, ::2]`）、取块的平均值（除以 4）、又对 `dy` 做一次上采样、对错误的轴求和，以及拆分方向错误的变形（$(N, 2, H, 2, W, C)$）。

# %%
from unet_scratch.exercises.ch06b import check_upsample_backward

def upsample_backward(dy):
    """Backward of 2x2 nearest-neighbour up-sampling.

    dy: (N, 2H, 2W, C), the gradient of the loss with respect to y = upsample(x).
    Returns dx: (N, H, W, C), each pixel the sum of the 4 values of dy in its 2x2 block.
    """
    ### BEGIN SOLUTION
    n, h2, w2, c = dy.shape
    return dy.reshape(n, h2 // 2, 2, w2 // 2, 2, c).sum(axis=(2, 4))
    ### END SOLUTION

check_upsample_backward(upsample_backward);

# %% [markdown] translates="90faef27041d"
# **与 TensorFlow 对照。** `tf.GradientTape` 直接对 `keras.layers.UpSampling2D` 求导。取损失 $L = \sum y \odot dy$，传到 $y$ 的梯度恰好是 `dy`，所以 tape 求出的对 $x$ 的梯度，正是 `upsample_backward(dy)` 应当返回的结果（全程 float64：这一层要加上 `dtype="float64"`，否则 Keras 会用 float32 计算）。

# %%
rng = np.random.default_rng(6)
x_up = rng.standard_normal((2, 3, 4, 5))
dy_up = rng.standard_normal((2, 6, 8, 5))
x_var = tf.Variable(x_up)
with tf.GradientTape() as tape:
    y_up = keras.layers.UpSampling2D(2, dtype="float64")(x_var)
    loss = tf.reduce_sum(y_up * dy_up)                      # dL/dy = dy_up
dx_tf = tape.gradient(loss, x_var).numpy()
y_ops, cache = ops.upsample2d(x_up, 2)
print("forward: ops.upsample2d equals UpSampling2D:", np.array_equal(y_ops, y_up.numpy()))
print("backward: ops.upsample2d_backward equals the tape's gradient:",
      np.allclose(ops.upsample2d_backward(dy_up, cache), dx_tf, rtol=1e-12, atol=1e-12))
try:
    print("backward: your upsample_backward equals the tape's gradient:",
          np.allclose(upsample_backward(dy_up), dx_tf, rtol=1e-12, atol=1e-12))
except NotImplementedError:
    print("backward: your upsample_backward is not implemented yet (the exercise above)")

# %% [markdown] translates="a312ab9b843f"
# `UNet(upsampling="resize_conv")` 的反向传播经过 `ops.upsample2d_backward`，也是同样的求和；它在整个网络上的 float64 梯度检验（gradient check）在 `tests/test_model.py` 里。
#
# ## 4. 权重搬运都要验证
#
# 只凭名字和形状，不能断定权重搬运成功了。设想一个 Keras U-Net，各层用的是从零实现的名字，拼接顺序却是 `[skip, up]`；它与一个按 `[up, skip]` 拼接的从零实现模型配成一对，权重一样，形状也一样：无论往哪个方向按名字复制都会成功，两个模型却算出不同的结果。所以每一次权重搬运（`from_keras`、`to_keras`，以及 PyTorch 的 `to_torch`、`from_torch`）都让两个模型在一幅探测图像上各运行一次，不一致就拒绝，并指出输出不同的第一层（这里用小模型：检查在任何宽度下都一样）：

# %%
mine = UNet(input_shape=(16, 16, 1), base_filters=4, depth=2, seed=0)                  # [up, skip]
other = build_keras_unet(input_shape=(16, 16, 1), base_filters=4, depth=2, concat_order="skip_first")
print("same weight names and shapes:", [v.path for v in other.weights] == list(mine.params)
      and all(tuple(v.shape) == mine.params[v.path].shape for v in other.weights))
try:
    to_keras(mine, other)
    refused = False
except ValueError as err:
    refused = True
    print(textwrap.fill(f"ValueError: {err}", 110))

# %% [markdown] translates="fc60b0a39f77"
# ## 5. 同一个网络的 PyTorch 版
#
# `unet_scratch.torch_ref` 里有一个 PyTorch 孪生网络：`TorchUNet`，一个 `nn.Module`，支持 `UNet` 的全部选项，子模块用的是从零实现中各层的名字；还有 `to_torch` / `from_torch`，双向复制权重。PyTorch 的张量布局不同，复制时不光要搬数字，还要移动轴：
#
# * 激活值在 PyTorch 中是 NCHW，`x[n, c, h, w]`，在这里和 Keras 中则是 NHWC，`x[n, h, w, c]`；
# * `Conv2d` 的权重是 `(out, in, kh, kw)`（OIHW），Keras 的则是 `(kh, kw, in, out)`（HWIO）；
# * `ConvTranspose2d` 的权重是 `(in, out, kh, kw)`，Keras 的 `Conv2DTranspose` 则是 `(kh, kw, out, in)`。
#
# 两个框架都把转置卷积的卷积核存成它所转置的那个前向卷积的卷积核，"in" 和 "out" 要反过来读；所以**同一个置换** `w.transpose(3, 2, 0, 1)` 对两种卷积核都适用。下图用这个模型最后一个解码器层的形状画出每一种转换（箭头表示每个轴去了哪里）：

# %%
module = to_torch(model)          # the article's model, with the weights imported from Keras
layouts = [
    ("an activation (dec1_concat's output)", "x.transpose(0, 3, 1, 2)", "NHWC", "NCHW",
     ["N", "H", "W", "C"], (1, SIZE, SIZE, 128), (0, 3, 1, 2)),
    ("a Conv2D kernel (dec1_conv1)", "w.transpose(3, 2, 0, 1)", "HWIO", "OIHW",
     ["kh", "kw", "in", "out"], model.params["dec1_conv1/kernel"].shape, (3, 2, 0, 1)),
    ("a Conv2DTranspose kernel (dec1_upconv)", "w.transpose(3, 2, 0, 1)", "(kh, kw, out, in)", "(in, out, kh, kw)",
     ["kh", "kw", "out", "in"], model.params["dec1_upconv/kernel"].shape, (3, 2, 0, 1)),
]
colour = {"N": "0.6", "H": plt.cm.viridis(0.0), "kh": plt.cm.viridis(0.0), "W": plt.cm.viridis(0.35),
          "kw": plt.cm.viridis(0.35), "C": plt.cm.viridis(0.65), "in": plt.cm.viridis(0.65),
          "out": plt.cm.viridis(0.9)}
fig, axes = plt.subplots(1, 3, figsize=(12, 4.0), dpi=100, layout="constrained")
for ax, (title, code, left, right, names, shape, perm) in zip(axes, layouts):
    ax.set_xlim(0, 10); ax.set_ylim(0.1, 5.2); ax.axis("off")
    ax.set_title(f"{title}\n{code}", fontsize=9)
    ax.text(1.6, 4.65, f"Keras / scratch\n{left}", ha="center", fontsize=9)
    ax.text(8.4, 4.65, f"PyTorch\n{right}", ha="center", fontsize=9)
    for side, x0, order in (("left", 0.2, range(4)), ("right", 7.0, perm)):
        for k, axis in enumerate(order):                  # the k-th axis of this side is axis `axis` of the left
            y0 = 3.4 - 1.05 * k
            ax.add_patch(plt.Rectangle((x0, y0), 2.8, 0.7, facecolor=colour[names[axis]], alpha=0.3,
                                       edgecolor=colour[names[axis]], lw=1.5))
            ax.text(x0 + 1.4, y0 + 0.35, f"axis {k}: {names[axis]} = {shape[axis]}", ha="center",
                    va="center", fontsize=9)
    for k_right, axis in enumerate(perm):
        ax.annotate("", xy=(7.0, 3.75 - 1.05 * k_right), xytext=(3.0, 3.75 - 1.05 * axis),
                    arrowprops=dict(arrowstyle="->", color=colour[names[axis]], lw=2))
fig.suptitle("Layouts: each axis moves, the numbers along it do not (arrows: where axis k of the Keras array goes)",
             fontsize=10)
plt.show()

# %% [markdown] translates="e39086ceb920"
# 孪生网络的权重正是这些形状和数值；搬到 PyTorch 再搬回来，从零实现的权重逐位不变：

# %%
for name, tname in (("dec1_conv1/kernel", "dec1_conv1"), ("dec1_upconv/kernel", "dec1_upconv")):
    w_torch = module.get_submodule(tname).weight.detach().numpy()
    print(f"{name:<20} scratch {model.params[name].shape} -> PyTorch {tuple(w_torch.shape)}, "
          f"equal to w.transpose(3, 2, 0, 1): {np.array_equal(w_torch, model.params[name].transpose(3, 2, 0, 1))}")
back = from_torch(module)
print("bit-identical after scratch -> PyTorch -> scratch:",
      all(np.array_equal(back.params[n], p) for n, p in model.params.items()))
del back
gc.collect();

# %% [markdown] translates="2393d6045a8e"
# **填充。** zhixuhao 上采样步骤中偶数大小的 $2 \times 2$ 卷积核需要多填充一个像素，而两个框架默认把它放在不同的地方：`nn.Conv2d(padding=1)` 在*每一边*各填一个像素，输出比输入大一个像素。`TorchUNet` 用 `F.pad` 把 TensorFlow 的规则写了出来（前面填 0 个，后面填 1 个）。（`nn.Conv2d(padding="same")` 也把多出的像素放在后面，但会发出警告：它要复制一份输入来做填充。）

# %%
conv_sym = torch.nn.Conv2d(4, 4, 2, padding=1)
print("nn.Conv2d(k=2, padding=1) on 32x32:", tuple(conv_sym(torch.zeros(1, 4, SIZE, SIZE)).shape[2:]))
module_z = to_torch(mz)           # zhixuhao's model, with the weights imported from Keras
print("TorchUNet's dec1_upconv pads (left, right, top, bottom):", module_z.dec1_upconv.pads)

# %% [markdown] translates="45a5ae9c1004"
# `compare_torch` 是与 PyTorch 对照的数值一致报告：每一层的输出由前向钩子（forward hook）记录，每个权重的梯度来自 `loss.backward()`，从零实现的反向传播喂的是 PyTorch 的激活值，容差与对照 Keras 时相同。这里用它检查上面从 Keras 导入的两个全宽模型。

# %%
report_t = compare_torch(model, module, x)
report_tz = compare_torch(mz, module_z, x)

# %%
# NBVAL_IGNORE_OUTPUT
print(report_t.verdict())
print(report_tz.verdict())

# %%
print("the article's model against its PyTorch twin:"); show(summary(report_t))
print("zhixuhao's model against its PyTorch twin:"); show(summary(report_tz, fwd_bound=1e-4))

# %% [markdown] translates="24b56c62c0eb"
# **并排训练。** `lockstep_torch` 做逐步对照训练（lockstep training）：从零实现的模型和它的孪生网络从相同的权重出发，在相同的批次（batch）上训练，PyTorch 一边用 `torch.optim.SGD` 或 `torch.optim.Adam`。带动量的 SGD 在两边是同一个更新。Adam 则不完全相同：两边维护同样的滑动平均 $m$ 和 $v$，但 Keras 在偏差修正*之前*把 $\epsilon$ 加到 $\sqrt{v}$ 上，PyTorch 则在修正*之后*加到 $\sqrt{\hat v}$ 上：
# $$\text{Keras: } w \leftarrow w - \eta\,\frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t}\,\frac{m}{\sqrt{v}+\epsilon}, \qquad
# \text{PyTorch: } w \leftarrow w - \eta\,\frac{\hat m}{\sqrt{\hat v}+\epsilon},\quad \hat m = \frac{m}{1-\beta_1^t},\ \hat v = \frac{v}{1-\beta_2^t}.$$
# 展开来看，Keras 的第 $t$ 步就是 PyTorch 的一步，只是 $\epsilon$ 换成了 $\epsilon/\sqrt{1-\beta_2^t}$（第一步是 31.6 $\epsilon$，之后逐渐缩小到 $\epsilon$）。`adam="keras"` 在每一步之前设置 PyTorch 的学习率（learning rate）和 $\epsilon$，使它的更新等于 Keras 的；`adam="torch"` 则像 PyTorch 用户平常那样直接运行 `torch.optim.Adam`。在一个 float64 的小模型上走 20 步：

# %%
rng = np.random.default_rng(0)
batches = [(rng.random((2, 16, 16, 1)), (rng.random((2, 16, 16, 1)) > 0.5).astype(float)) for _ in range(4)]
for optimizer, adam in (("sgd", "keras"), ("adam", "keras"), ("adam", "torch")):
    tiny = UNet(input_shape=(16, 16, 1), base_filters=4, depth=2, dropout=0, seed=0, dtype="float64")
    r = lockstep_torch(tiny, None, batches, optimizer=optimizer, steps=20, adam=adam)
    label = optimizer + (f", adam={adam!r}" if optimizer == "adam" else "")
    print(f"{label:<18} losses agree at every step to 1e-12: {r.max_rel_diff < 1e-12!s:<5}, "
          f"to 1e-3: {r.max_rel_diff < 1e-3!s:<5}; weights after 20 steps to 1e-12: {r.weight_rel_diff < 1e-12}")

# %% [markdown] translates="601e3b8c24fa"
# 把 Keras 的更新写进 PyTorch 的 Adam 之后，float64 下两边一致到舍入误差，和 SGD 一样：两边的网络、损失和梯度都相同。PyTorch 自己的 Adam 是一个稍有不同的优化器：损失曲线重合到万分之几，权重却逐渐分开，梯度小的权重（$\sqrt{v}$ 比 $\epsilon$ 大不了多少）分得最开，在这里就是偏置（bias）。
#
# ## 测得了什么
#
# | | float64：前向输出在 $10^{-12}$ 之内，每个权重梯度在 $10^{-10}$ 之内（相对） | float32 数值一致报告 |
# | --- | --- | --- |
# | 原文的 `unet()` 对照 Keras | 第 1 节（以及 `tests/test_keras_byom.py`） | 通过（第 1 节） |
# | zhixuhao 的 `unet()` 对照 Keras | `tests/test_keras_byom.py` | 通过（第 2 节） |
# | 两个模型对照各自的 PyTorch 孪生网络 | 带各种选项的窄模型见 `tests/test_torch_ref.py`；全宽模型见 `docs/bring-your-own-model.md` | 通过（第 5 节） |
#
# 此外，搬到 PyTorch 再搬回来的权重逐位相同。下面的单元格汇总这次运行的各项结论；仓库里的 `docs/bring-your-own-model.md` 以脚本的形式走一遍同样的步骤，并给出测得的误差。

# %%
measured = {
    "article's unet() imported by structure, 31,030,593 weights": model.count_params() == km.count_params() == 31_030_593,
    "article vs Keras, float32 parity report": report.passed,
    "article vs Keras, float64 forward within 1e-12": fwd64 < 1e-12,
    "article vs Keras, float64 gradients within 1e-10": grad64 < 1e-10,
    "zhixuhao's unet() imported, float32 parity report": report_z.passed,
    "the transposed conv paints a period-2 pattern on a flat input": np.allclose(transposed[0, :-2, :-2, :], tiled, atol=1e-6),
    "a [skip, up] model refused by to_keras": refused,
    "article vs PyTorch twin, parity report": report_t.passed,
    "zhixuhao's model vs PyTorch twin, parity report": report_tz.passed,
}
show(measured)

# %% [markdown] translates="be1d969e89a2"
# ## 本章练习
#
# 1. `upsample_backward(dy)`：$2 \times 2$ 最近邻上采样的反向传播，即对每个 $2 \times 2$ 块求和（与 `ops.upsample2d_backward` 对照；正文中还与 `tf.GradientTape` 对 `keras.layers.UpSampling2D` 的求导结果对照）。

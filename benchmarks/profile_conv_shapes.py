"""XLA:CPU speed of single convolutions at the shapes the 64 px chest models meet, in
GFLOP/s, beside a matmul of the same machine (the roof the convs should approach).

    python benchmarks/profile_conv_shapes.py

At 64 px input, ResNet-18's last stage and DenseNet-121's last block work on 2x2 maps;
a padded 3x3 convolution there ran at 0.7 GFLOP/s on a 2-core AMD EPYC (AVX2), 40-60x
below the same convolution at 4x4 or 7x7 and below its own kernel gradient, which is what
holds those models' training steps back on CPU.
"""

import time

import jax
import jax.numpy as jnp

NHWC = ("NHWC", "HWIO", "NHWC")


def gflops(fn, args, flops: float, repeats: int = 3) -> tuple[float, float]:
    """(milliseconds per call, GFLOP/s) of jitted `fn(*args)`, after one warm-up call."""
    compiled = jax.jit(fn)
    jax.block_until_ready(compiled(*args))
    start = time.perf_counter()
    for _ in range(repeats):
        jax.block_until_ready(compiled(*args))
    seconds = (time.perf_counter() - start) / repeats
    return seconds * 1e3, flops / seconds / 1e9


def conv(strides: int, padding):
    return lambda x, k: jax.lax.conv_general_dilated(x, k, (strides, strides), padding,
                                                     dimension_numbers=NHWC)


def kernel_gradient(padding):
    def grad(x, k):
        return jax.grad(lambda k: conv(1, padding)(x, k).sum())(k)
    return grad


def main():
    ones = jnp.ones
    same = ((1, 1), (1, 1))
    cases = [
        ("matmul 2048 x 2048", lambda a: a @ a, (ones((2048, 2048)),), 2 * 2048 ** 3),
        ("stem 7x7/2, 1 -> 64, 64 px, batch 32", conv(2, ((3, 3), (3, 3))),
         (ones((32, 64, 64, 1)), ones((7, 7, 1, 64))), 2 * 32 * 32 * 32 * 49 * 64),
        ("3x3/2, 64 -> 128, 16x16 maps, batch 32", conv(2, same),
         (ones((32, 16, 16, 64)), ones((3, 3, 64, 128))), 2 * 32 * 8 * 8 * 9 * 64 * 128),
        ("3x3/1 padded, 256 -> 256, 4x4 maps, batch 32", conv(1, same),
         (ones((32, 4, 4, 256)), ones((3, 3, 256, 256))), 2 * 32 * 16 * 9 * 256 * 256),
        ("3x3/1 padded, 512 -> 512, 7x7 maps, batch 8", conv(1, same),
         (ones((8, 7, 7, 512)), ones((3, 3, 512, 512))), 2 * 8 * 49 * 9 * 512 * 512),
        ("3x3/1 padded, 512 -> 512, 2x2 maps, batch 32", conv(1, same),
         (ones((32, 2, 2, 512)), ones((3, 3, 512, 512))), 2 * 32 * 4 * 9 * 512 * 512),
        ("  same output from a 4x4 input, VALID", conv(1, "VALID"),
         (ones((32, 4, 4, 512)), ones((3, 3, 512, 512))), 2 * 32 * 4 * 9 * 512 * 512),
        ("  its kernel gradient", kernel_gradient(same),
         (ones((32, 2, 2, 512)), ones((3, 3, 512, 512))), 2 * 32 * 4 * 9 * 512 * 512),
    ]
    print(f"jax {jax.__version__} on {jax.devices()[0].device_kind}")
    print("| operation | ms | GFLOP/s |\n|---|---:|---:|")
    for name, fn, args, flops in cases:
        ms, rate = gflops(fn, args, flops)
        print(f"| {name} | {ms:.1f} | {rate:.1f} |")


if __name__ == "__main__":
    main()

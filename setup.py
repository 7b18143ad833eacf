from setuptools import setup

setup(
    packages=["inpaint_fused", "inpaint_fused._kernels"],
    package_dir={"inpaint_fused._kernels": "kernels"},
)

"""ament_python package rhas_ros: the ROS 2 node (rhas_ros) and the HopaDIFF module (hopadiff)."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "rhas_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=["rhas_ros", "rhas_ros.*", "hopadiff", "hopadiff.*"]),
    package_data={"hopadiff": ["resources/*.txt"]},
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + PACKAGE]),
        ("share/" + PACKAGE, ["package.xml"]),
        ("share/" + PACKAGE + "/launch", glob("launch/*.launch.py")),
        ("share/" + PACKAGE + "/config", glob("config/*.yaml") + glob("config/*.xml")),
        ("share/" + PACKAGE + "/config/hopadiff", glob("config/hopadiff/*.yaml")),
    ],
    install_requires=["setuptools"],
    extras_require={
        "train": ["tensorboard"],  # hopadiff-train's logs; not needed by the node
        "export": ["onnx", "onnxscript"],  # inference_engine onnxruntime exports with them (no rosdep keys)
    },
    zip_safe=False,
    maintainer="rhas_ros developers",
    maintainer_email="dev@rhas-ros.org",
    description="Referring human action segmentation (HopaDIFF) as a ROS 2 node, with its training code.",
    license="Apache-2.0",
    python_requires=">=3.10",
    entry_points={
        "console_scripts": [
            "hopadiff-synth = hopadiff.synth.cli:main",
            "hopadiff-train = hopadiff.train:main",
            "hopadiff-eval = hopadiff.evaluate:main",
            "hopadiff-extract = hopadiff.features.extract:main",
            "hopadiff-convert = hopadiff.convert:main",
            "rhas_node = rhas_ros.node:main",
            "rhas_demo = rhas_ros.tools.demo:main",
            "rhas_behavior = rhas_ros.behavior:main",
            "rhas_bag = rhas_ros.bag.cli:main",
        ],
    },
)

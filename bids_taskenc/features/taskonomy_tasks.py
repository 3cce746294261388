"""Taskonomy's task tables: the encoders' published hashes, the paper's 21 tasks, groups, aliases, inputs.

No torch here: the command line's help, the weights store and the feature-family registry read these
tables without loading a network. Facts from Zamir et al. (CVPR 2018), the task bank of
StanfordVL/taskonomy and visualpriors 0.3.5 (MIT license); see :mod:`.taskonomy`.
"""

from __future__ import annotations

from .base import FeatureError

#: sha256 in the published file name ``{task}_encoder-{sha256}.pth`` (visualpriors 0.3.5).
ENCODER_SHA256: dict[str, str] = {
    "autoencoding": "e35146c09253720e97c0a7f8ee4e896ac931f5faa1449df003d81e6089ac6307",
    "class_object": "4a4e42dad58066039a0d2f9d128bb32e93a7e4aa52edb2d2a07bcdd1a6536c18",
    "class_scene": "ad85764467cddafd98211313ceddebb98adf2a6bee2cedfe0b922a37ae65eaf8",
    "colorization": "5ed817acdd28d13e443d98ad15ebe1c3059a3252396a2dff6a2090f6f86616a5",
    "curvature": "3767cf5d06d9c6bca859631eb5a3c368d66abeb15542171b94188ffbe47d7571",
    "denoising": "b64cab95af4a2c565066a7e8effaf37d6586c3b9389b47fff9376478d849db38",
    "depth_euclidean": "88f18d41313de7dbc88314a7f0feec3023047303d94d73eb8622dc40334ef149",
    "depth_zbuffer": "cc343a8ed622fd7ee3ce54398be8682bbbbfb5d11fa80e8d03a56a5ae4e11b09",
    "edge_occlusion": "5ac3f3e918131f61e01fe95e49f462ae2fc56aa463f8d353ca84cd4e248b9c08",
    "edge_texture": "be2d686a6a4dfebe968d16146a17176eba37e29f736d5cd9a714317c93718810",
    "egomotion": "9aa647c34bf98f9e491e0b37890d77566f6ae35ccf41d9375c674511318d571c",
    "fixated_pose": "78cf321518abc16f9f4782b9e5d4e8f5d6966c373d951928a26f872e55297567",
    "inpainting": "bf96fbaaea9268a820a19a1d13dbf6af31798f8983c6d9203c00fab2d236a142",
    "jigsaw": "0c2b342c9080f8713c178b04aa6c581ed3a0112fecaf78edc4c04e0a90516e39",
    "keypoints2d": "6b77695acff4c84091c484a7b128a1e28a7e9c36243eda278598f582cf667fe0",
    "keypoints3d": "7e3f1ec97b82ae30030b7ea4fec2dc606b71497d8c0335d05f0be3dc909d000d",
    "nonfixated_pose": "3433a600ca9ff384b9898e55d86a186d572c2ebbe4701489a373933e3cfd5b8b",
    "normal": "f5e2c7737e4948e3b2a822f584892c342eaabbe66661576ba50db7cdd40561c5",
    "point_matching": "4bd2a6b2909d9998fabaf0278ab568f42f2b692a648e28555ede6c6cda5361f4",
    "reshading": "de456246e171dc8407fb2951539aa60d75925ae0f1dbb43f110b7768398b36a6",
    "room_layout": "1e1662f43b834261464b1825227a04efba59b50cc8883bee9adc3ddafd4796c1",
    "segment_semantic": "bb3007244520fc89cd111e099744a22b1e5c98cd83ed3f116fbff6376d220127",
    "segment_unsup25d": "7d12d2500c18c003ffc23943214f5dfd74932f0e3d03dde2c3a81ebc406e31a0",
    "segment_unsup2d": "b679053a920e8bcabf0cd454606098ae85341e054080f2be29473971d4265964",
    "vanishing_point": "afd2ae9b71d46a54efc5231b3e38ebc3e35bfab78cb0a78d9b75863a240b19a8",
}

ALL_TASKS: tuple[str, ...] = tuple(sorted(ENCODER_SHA256))

#: The 21 single-image tasks of Wang, Tarr & Wehbe (NeurIPS 2019), in the paper's order.
PAPER_TASKS: tuple[str, ...] = (
    "autoencoding",
    "colorization",
    "curvature",
    "denoising",
    "depth_zbuffer",
    "depth_euclidean",
    "edge_texture",
    "edge_occlusion",
    "keypoints2d",
    "keypoints3d",
    "reshading",
    "room_layout",
    "segment_unsup2d",
    "segment_unsup25d",
    "normal",
    "vanishing_point",
    "segment_semantic",
    "class_object",
    "class_scene",
    "jigsaw",
    "inpainting",
)

#: Tasks whose encoder sees two or three views at once (camera pose, egomotion,
#: point matching). A single stimulus image is not their input, so they are not
#: feature spaces here; the store can still fetch their weights.
MULTI_VIEW_TASKS: tuple[str, ...] = ("egomotion", "fixated_pose", "nonfixated_pose", "point_matching")

#: Group of each single-image task, after Taskonomy's task-similarity tree
#: (Zamir et al. 2018, Fig. 13): 2D, 3D and semantic clusters; its fourth cluster,
#: low-dimensional geometry (room layout, vanishing point), and jigsaw, which
#: sits in none of the three, are "other".
TASK_GROUPS: dict[str, str] = {
    **dict.fromkeys(
        ("autoencoding", "colorization", "denoising", "edge_texture", "inpainting", "keypoints2d", "segment_unsup2d"),
        "2D",
    ),
    **dict.fromkeys(
        (
            "curvature",
            "depth_zbuffer",
            "depth_euclidean",
            "edge_occlusion",
            "keypoints3d",
            "normal",
            "reshading",
            "segment_unsup25d",
        ),
        "3D",
    ),
    **dict.fromkeys(("class_object", "class_scene", "segment_semantic"), "semantic"),
    **dict.fromkeys(("room_layout", "vanishing_point", "jigsaw"), "other"),
}

#: Names the 2018 task bank used for the same tasks (accepted as aliases).
TASKBANK_ALIASES: dict[str, str] = {
    "autoencoder": "autoencoding",
    "denoise": "denoising",
    "edge2d": "edge_texture",
    "edge3d": "edge_occlusion",
    "keypoint2d": "keypoints2d",
    "keypoint3d": "keypoints3d",
    "reshade": "reshading",
    "rgb2depth": "depth_zbuffer",
    "rgb2mist": "depth_euclidean",
    "rgb2sfnorm": "normal",
    "segment25d": "segment_unsup25d",
    "segment2d": "segment_unsup2d",
    "segmentsemantic": "segment_semantic",
    "class_1000": "class_object",
    "class_places": "class_scene",
    "inpainting_whole": "inpainting",
    "ego_motion": "egomotion",
    "fix_pose": "fixated_pose",
    "non_fixated_pose": "nonfixated_pose",
    "point_match": "point_matching",
}

#: Input each encoder saw in the task bank (run_img_task.py + the task's config):
#:
#: ``low_sat``   pixels clipped to [0.1, 0.9] before scaling to [-1, 1] (so [-0.8, 0.8]);
#:               run_img_task.py does this for these tasks because near-0/1 pixels overflowed.
#: ``rgb``       [0, 1] -> [-1, 1].
#: ``lightness`` colorization's input is the CIELAB L channel only (L/100 -> [-1, 1]); the
#:               PyTorch conv1 takes 3 channels, so L is repeated in all three.
#: ``center_masked`` inpainting's context-encoder input: [-1, 1] with the central
#:               half (H/4:3H/4, W/4:3W/4) set to 0.
#: jigsaw: the whole image, as the task bank's representation-extraction script feeds it
#: (``generate_jigsaw_input_for_representation_extraction``). Wang et al. (2019) ran
#: ``run_img_task.py --store-rep``, whose jigsaw branch instead cuts nine randomly
#: permuted, randomly offset tiles (``generate_jigsaw_input``): an input that differs
#: on every run and no single 8x16x16 latent. We keep the deterministic one.
TASK_INPUT: dict[str, str] = {
    **dict.fromkeys(
        (
            "autoencoding",
            "curvature",
            "denoising",
            "edge_texture",
            "edge_occlusion",
            "keypoints2d",
            "keypoints3d",
            "reshading",
            "depth_zbuffer",
            "depth_euclidean",
            "normal",
            "segment_unsup25d",
            "segment_unsup2d",
            "room_layout",
        ),
        "low_sat",
    ),
    **dict.fromkeys(("class_object", "class_scene", "segment_semantic", "vanishing_point", "jigsaw"), "rgb"),
    "colorization": "lightness",
    "inpainting": "center_masked",
}

#: Bump when the image-to-latent computation changes (cache keys include it).
TASKONOMY_VERSION = "1"

LATENT_SHAPE = (8, 16, 16)
INPUT_SIZE = 256


def canonical_task(name: str) -> str:
    """Task name from a task-bank alias or itself; FeatureError when unknown."""
    task = TASKBANK_ALIASES.get(name, name)
    if task not in ENCODER_SHA256:
        raise FeatureError(f"unknown Taskonomy task {name!r}; known: {', '.join(ALL_TASKS)}")
    return task

"""Physics of the synthetic benchmark, checked against what theory predicts."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from rft.data.schema import SpoofType
from rft.data.synth import ImagePlan, render_image
from rft.data.synth.attacks import (
    SUBPIXELS,
    PlaneView,
    _spot_threshold,
    halftone,
    print_reflectance,
    recapture_plane,
    separate_cmyk,
    subpixel_emission,
)
from rft.data.synth.capture import Camera, Illumination, blackbody_rgb, capture
from rft.data.synth.faces import (
    available_sources,
    identity_appearance,
    render_face,
    sample_identity,
    sample_pose,
)
from rft.data.synth.generate import subject_identity


def test_blackbody_colours_follow_colour_temperature():
    tungsten, daylight, screen = blackbody_rgb(2700), blackbody_rgb(6500), blackbody_rgb(9300)
    assert daylight == pytest.approx([1, 1, 1], abs=1e-5)
    assert tungsten[0] / tungsten[2] > 2.5  # orange
    assert screen[2] > screen[1] > screen[0]  # bluish


@pytest.mark.parametrize("coverage", [0.1, 0.5, 0.85])
@pytest.mark.parametrize("angle", [0.0, 15.0, 45.0])
def test_calibrated_clustered_dot_screen_inks_the_requested_share(coverage, angle):
    shape = (240, 240)
    threshold = _spot_threshold(shape, period=6.0, angle_deg=angle, phase=(0.3, 1.1))
    area = halftone(np.full(shape, coverage, np.float32), threshold, 6.0, np.zeros(shape, np.float32))
    assert area.mean() == pytest.approx(coverage, abs=0.02)
    assert ((area > 0.05) & (area < 0.95)).mean() < 0.5  # mostly solid ink or bare paper: dots, not a tint


def test_grey_component_replacement_moves_shared_ink_to_black():
    inks = separate_cmyk(np.array([[[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [0.2, 0.6, 0.6]]], np.float32), 0.6)
    assert [float(inks[k][0, 0]) for k in ("cyan", "magenta", "yellow", "black")] == [0, 0, 0, 0]
    assert float(inks["black"][0, 1]) == pytest.approx(0.6)
    assert float(inks["cyan"][0, 2]) > float(inks["magenta"][0, 2])


def test_printing_compresses_the_gamut():
    rng = np.random.default_rng(0)
    patches = np.zeros((96, 96 * 3, 3), np.float32)
    patches[:, 96:192] = 1.0  # white
    patches[:, 192:] = (1.0, 0.0, 0.0)  # saturated red
    reflectance, _ = print_reflectance(patches, period_px=4.0, strength=1.0, rng=rng)
    black, white, red = (reflectance[16:80, 16 + 96 * i : 80 + 96 * i].mean((0, 1)) for i in range(3))
    assert black.max() > 0.003  # ink never absorbs everything
    assert white.min() < 0.97  # paper never reflects everything
    assert red[0] / max(red[1], 1e-6) < 1.0 / 0.02  # far less pure than display red (R/G = infinity)
    assert red[0] > 2 * red[1]


@pytest.mark.parametrize("pitch_ratio", [0.95, 1.1])
def test_moire_appears_at_the_beat_of_display_and_sensor_pitch(pitch_ratio):
    """Display rows repeat `pitch_ratio` times per sensor pixel; sampling folds that to |ratio - 1|."""
    sensor = 128
    screen = np.full((int(sensor * pitch_ratio) + 8,) * 2 + (3,), 0.5, np.float32)
    emission = subpixel_emission(screen, black_matrix=0.6, bgr_order=False)
    view = PlaneView(
        scale=SUBPIXELS * pitch_ratio, rotation_deg=0.0, keystone_x=0.0, keystone_y=0.0, shift=(0.0, 0.0)
    )
    matrix = view.matrix(sensor, (emission.shape[1] / 2, emission.shape[0] / 2))
    image, _, _ = recapture_plane(
        emission, sensor, matrix, lens_sigma_px=0.3, defocus_px=0.0, fill_factor=0.8
    )
    rows = image.mean(axis=(1, 2))
    spectrum = np.abs(np.fft.rfft(rows - rows.mean()))
    assert np.argmax(spectrum[1:]) + 1 == pytest.approx(sensor * abs(pitch_ratio - 1), abs=1.0)
    assert rows.std() / rows.mean() > 0.005  # visible, not just a numerical ripple


def test_dim_light_makes_noisier_images_at_the_same_exposure():
    camera = Camera(
        resolution_scale=1.0, full_well=4000, read_noise=4, optics_blur_px=0.4, jpeg_quality=95, wb_residual=0
    )
    stds, means = [], []
    for intensity in (1.0, 0.05):
        light = Illumination(intensity=intensity, cct_kelvin=5000, azimuth_deg=0, elevation_deg=0, ambient=1)
        radiance = np.full((96, 96, 3), 0.4, np.float32) * light.rgb
        image = capture(radiance, light, camera, 96, np.random.default_rng(1)).astype(np.float32)
        stds.append(image[8:-8, 8:-8].std())
        means.append(image.mean())
    assert stds[1] > 2 * stds[0]
    assert means[1] == pytest.approx(means[0], rel=0.1)  # auto-exposure: brightness is no cue


def test_identities_render_from_every_source():
    for source in available_sources():
        rng = np.random.default_rng(3)
        identity = sample_identity(rng, lfw_index=7, sources=(source,))
        appearance = identity_appearance(identity)
        assert identity.source == source and appearance.shape == (256, 256, 3)
        assert appearance.min() >= 0 and appearance.max() <= 1 and appearance.std() > 0.05
        face = render_face(identity, sample_pose(rng), 64)
        assert face.srgb.shape == (64, 64, 3)
        assert np.allclose(np.linalg.norm(face.normals, axis=-1), 1, atol=1e-4)
        assert face.landmarks["left_eye"][0] < face.landmarks["right_eye"][0]


def test_lfw_faces_are_dealt_to_subjects_without_repeats():
    identities = [subject_identity(0, "studio", subject) for subject in range(100)]
    lfw = [identity.lfw_index for identity in identities if identity.source == "lfw"]
    assert len(lfw) > 20 and len(set(lfw)) == len(lfw)


def _high_frequency_energy(png: bytes) -> float:
    grey = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE).astype(np.float32)
    return float(np.abs(grey - cv2.GaussianBlur(grey, (0, 0), 1.5)).mean())


@pytest.mark.parametrize("spoof_type", [SpoofType.PRINT, SpoofType.REPLAY])
def test_attack_strength_scales_the_texture_an_attack_leaves(spoof_type):
    plans = [ImagePlan("studio", index, "train", index, spoof_type) for index in range(6)]

    def energy(strength: float) -> float:
        return float(np.mean([_high_frequency_energy(render_image(p, 0, 128, strength).png) for p in plans]))

    assert energy(3.0) > 1.3 * energy(0.5)


def test_rendering_is_a_pure_function_of_the_plan():
    plan = ImagePlan("street", 17, "test", 3, SpoofType.MASK_PAPER)
    first, second = render_image(plan, 9, 80, 1.0), render_image(plan, 9, 80, 1.0)
    assert first.png == second.png and first.meta == second.meta
    assert render_image(plan, 10, 80, 1.0).png != first.png

"""The built-in algorithms' hyperparameter tables, our problem messages, the containers' FailureReason texts,
the spec mapping and the per-region image URIs (cloud-apis.md 1.5, 1.7, 1.8; pains.md S3, S4)."""

from __future__ import annotations

import json

import pytest

from mcv_sagemaker import algorithms as alg
from mcv_sagemaker import image_uris
from mcv_sagemaker.algorithms import IMAGE_CLASSIFICATION as IC
from mcv_sagemaker.algorithms import OBJECT_DETECTION as OD
from multicloud_cv.errors import BadInput

BASE = {"num_classes": "3", "num_training_samples": "100"}


def test_task_to_algorithm() -> None:
    assert alg.algorithm_for_task("classification") == IC
    assert alg.algorithm_for_task("multilabel") == IC
    assert alg.algorithm_for_task("detection") == OD
    with pytest.raises(BadInput, match="segmentation"):
        alg.algorithm_for_task("segmentation")


def test_tables_hold_the_documented_names_and_defaults() -> None:
    ic, od = alg.HYPERPARAMETERS[IC], alg.HYPERPARAMETERS[OD]
    assert len(ic) == 29 and len(od) == 22
    assert set(od) == {
        "num_classes", "num_training_samples", "base_network", "early_stopping", "early_stopping_min_epochs",
        "early_stopping_patience", "early_stopping_tolerance", "image_shape", "epochs", "freeze_layer_pattern",
        "kv_store", "label_width", "learning_rate", "lr_scheduler_factor", "lr_scheduler_step", "mini_batch_size",
        "momentum", "nms_threshold", "optimizer", "overlap_threshold", "use_pretrained_model", "weight_decay",
    }  # fmt: skip
    assert {n for n, s in ic.items() if s.required} == {"num_classes", "num_training_samples"}
    assert {n for n, s in od.items() if s.required} == {"num_classes", "num_training_samples"}
    assert alg.defaults(IC)["num_layers"] == "152" and alg.defaults(IC)["use_pretrained_model"] == "0"
    assert alg.defaults(IC)["learning_rate"] == "0.1" and alg.defaults(IC)["image_shape"] == "3,224,224"
    assert alg.defaults(OD)["use_pretrained_model"] == "1" and alg.defaults(OD)["learning_rate"] == "0.001"
    assert alg.defaults(OD)["label_width"] == "350" and alg.defaults(OD)["image_shape"] == "300"
    assert "resize" in ic and "resize" not in od and "base_network" in od and "top_k" not in od
    # every documented default passes its own check
    for table in (ic, od):
        for spec in table.values():
            if spec.default:
                assert spec.check(spec.default) is None, spec.name


def test_valid_sets_have_no_problem_and_would_start() -> None:
    ic = {**BASE, "image_shape": "3,32,32", "resize": "40", "num_layers": "20", "optimizer": "adam", "epochs": "2"}
    od = {**BASE, "image_shape": "512", "base_network": "resnet-50", "optimizer": "adadelta", "label_width": "600"}
    for algorithm, values in ((IC, ic), (OD, od)):
        assert alg.hyperparameter_problems(algorithm, values) == []
        assert alg.container_error(algorithm, values) is None


def test_a_typo_names_the_right_suggestion() -> None:
    problems = alg.hyperparameter_problems(IC, {**BASE, "lerning_rate": "0.01", "mini_batchsize": "8"})
    assert problems == [
        "unknown hyperparameter 'lerning_rate' for image-classification; did you mean 'learning_rate'?",
        "unknown hyperparameter 'mini_batchsize' for image-classification; did you mean 'mini_batch_size'?",
    ]
    far = alg.hyperparameter_problems(OD, {**BASE, "zzz": "1"})
    assert len(far) == 1 and "valid names:" in far[0] and "base_network" in far[0]


def test_missing_required_names_what_it_takes() -> None:
    problems = alg.hyperparameter_problems(OD, {"num_classes": "2"})
    assert problems == [
        "missing required hyperparameter 'num_training_samples' for object-detection (a positive integer: "
        "number of training examples in the input dataset)"
    ]


@pytest.mark.parametrize(
    ("algorithm", "name", "value", "expected"),
    [
        (OD, "image_shape", "3,416,416", "expected an integer between 300 and 10000"),
        (OD, "image_shape", "299", "expected an integer between 300 and 10000"),
        (IC, "image_shape", "416", "expected 'num_channels,height,width' with 1 or 3 channels"),
        (IC, "image_shape", "4,224,224", "with 1 or 3 channels"),
        (IC, "optimizer", "adadelta", "expected one of sgd, adam, rmsprop, nag"),
        (OD, "optimizer", "nag", "expected one of sgd, adam, rmsprop, adadelta"),
        (IC, "num_layers", "19", "expected one of 18, 34, 50, 101, 152, 200, 20, 32, 44, 56, 110"),
        (IC, "top_k", "1", "expected an integer >= 2"),
        (IC, "learning_rate", "1.5", "expected a number in [0, 1]"),
        (OD, "learning_rate", "0", "expected a number in (0, 1]"),
        (OD, "weight_decay", "1", "expected a number in (0, 1)"),
        (IC, "multi_label", "true", "expected one of 0, 1"),
        (IC, "early_stopping", "yes", "expected one of True, False"),
        (IC, "epochs", "0", "expected a positive integer"),
        (IC, "epochs", "2.5", "expected a positive integer"),
        (IC, "lr_scheduler_step", "10,x", "comma-separated positive epoch numbers"),
        (OD, "freeze_layer_pattern", "^(conv1_", "expected a regular expression"),
        (OD, "base_network", "resnet-101", "expected one of vgg-16, resnet-50"),
    ],
)
def test_bad_values_name_the_expected_form(algorithm: str, name: str, value: str, expected: str) -> None:
    problems = alg.hyperparameter_problems(algorithm, {**BASE, name: value})
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"hyperparameter {name}='{value}' is not valid for {algorithm}: ")
    assert expected in problems[0]


def test_image_shape_per_algorithm() -> None:
    assert alg.parse_image_shape(IC, "3,224,224") == (3, 224, 224)
    assert alg.parse_image_shape(IC, "3, 128, 96") == (3, 128, 96)  # the documented default is written with spaces
    assert alg.parse_image_shape(OD, "512") == (3, 512, 512)
    with pytest.raises(BadInput, match="an integer between 300 and 10000"):
        alg.parse_image_shape(OD, "3,416,416")
    with pytest.raises(BadInput, match="num_channels,height,width"):
        alg.parse_image_shape(IC, "224")


def test_cross_field_rules() -> None:
    def problems(algorithm: str, **values: str) -> list[str]:
        return alg.hyperparameter_problems(algorithm, {**BASE, **values})

    assert problems(IC, image_shape="3,224,224", resize="200")[0].startswith(
        "resize 200 is smaller than the image_shape height/width 224x224"
    )
    assert problems(IC, resize="256") == []  # compared with the default image_shape 3,224,224
    assert problems(IC, image_shape="3,64,64", resize="64") == []
    assert "use_weighted_loss=1 applies only to multi-label" in problems(IC, use_weighted_loss="1")[0]
    assert problems(IC, use_weighted_loss="1", multi_label="1") == []
    assert problems(IC, early_stopping_patience="3")[0].startswith(
        "hyperparameter early_stopping_patience has no effect unless early_stopping=True"
    )
    assert problems(OD, early_stopping="True", early_stopping_patience="3") == []
    assert "top_k 5 exceeds num_classes 3" in problems(IC, top_k="5")[0]
    assert "checkpoint_frequency 40 is greater than epochs 30" in problems(IC, checkpoint_frequency="40")[0]
    assert (
        "mini_batch_size 32 is larger than num_training_samples 10"
        in alg.hyperparameter_problems(IC, {"num_classes": "2", "num_training_samples": "10"})[0]
    )
    pretrained = problems(IC, use_pretrained_model="1", num_layers="20", image_shape="3,32,32", resize="40")
    assert len(pretrained) == 2 and "needs num_layers in 18, 34" in pretrained[0] and "224 x 224" in pretrained[1]
    image_files = alg.hyperparameter_problems(IC, BASE, content_type="application/x-image")
    assert image_files == [
        "resize is required when training on image files (application/x-image); set resize to the shortest side "
        "in px, larger than the image_shape height and width"
    ]
    assert alg.hyperparameter_problems(IC, BASE, content_type="application/x-recordio") == []


def test_label_width_must_hold_the_most_boxes() -> None:
    assert alg.hyperparameter_problems(OD, BASE, max_boxes=69) == []  # 2 + 5 x 69 = 347 <= 350
    problems = alg.hyperparameter_problems(OD, BASE, max_boxes=70)
    assert problems == [
        "label_width 350 is too small: an image with 70 boxes needs at least 2 + 5 x 70 = 352; "
        "set label_width to 352 or more"
    ]
    assert alg.hyperparameter_problems(OD, {**BASE, "label_width": "352"}, max_boxes=70) == []


def test_container_errors_in_the_containers_words() -> None:
    typo = alg.container_error(IC, {**BASE, "lerning_rate": "0.1"})
    assert typo == "ClientError: Additional hyperparameters are not allowed ('lerning_rate' was unexpected)"
    two = alg.container_error(IC, {**BASE, "b": "1", "a": "1"})
    assert two == "ClientError: Additional hyperparameters are not allowed ('a', 'b' were unexpected)"
    assert alg.container_error(IC, {"num_classes": "2"}) == (
        "ClientError: Missing required hyperparameter(s): num_training_samples"
    )
    assert alg.container_error(OD, {**BASE, "image_shape": "3,416,416"}) == (
        "ClientError: The value '3,416,416' is not valid for the 'image_shape' hyperparameter which expects one "
        "of the following: a string which matches the pattern '^[1-9][0-9]*$'; or an integer between 300 and "
        "10000 (caused by ValidationError)"
    )
    small = alg.container_error(IC, {"num_classes": "2", "num_training_samples": "5"})
    assert small == "ClientError: The number of input images must be bigger or equal to the mini_batch_size."
    width = alg.container_error(OD, BASE, max_boxes=100)
    assert width is not None and width.startswith("ClientError: Invalid parameter value 'label_width'")
    assert "350" in width and "502" in width
    resize = alg.container_error(IC, BASE, content_type="image/jpeg")
    assert resize is not None and "'resize'" in resize
    # what the documentation calls ignored does not fail a real job
    assert alg.container_error(IC, {**BASE, "use_weighted_loss": "1"}) is None
    assert alg.container_error(OD, {**BASE, "early_stopping_patience": "2"}) is None


def test_spec_hyperparameters_are_strings_and_valid() -> None:
    ic = alg.spec_hyperparameters(
        IC, task="classification", num_classes=4, num_training_samples=20, epochs=3, image_shape=(32, 32)
    )
    assert ic == {
        "num_classes": "4",
        "num_training_samples": "20",
        "epochs": "3",
        "mini_batch_size": "20",
        "num_layers": "152",  # pinned: incremental training must repeat it
        "image_shape": "3,32,32",
        "resize": "37",
    }
    multi = alg.spec_hyperparameters(
        IC, task="multilabel", num_classes=5, num_training_samples=500, label_format="class-id"
    )
    assert multi["multi_label"] == "1" and multi["resize"] == "256" and "mini_batch_size" not in multi
    assert multi["image_shape"] == "3,224,224"  # the default, pinned
    od = alg.spec_hyperparameters(
        OD, task="detection", num_classes=2, num_training_samples=50, image_shape=512, max_boxes=100
    )
    assert od == {
        "num_classes": "2",
        "num_training_samples": "50",
        "base_network": "vgg-16",
        "image_shape": "512",
        "label_width": "502",
    }
    for algorithm, keys in alg.INCREMENTAL_TRAINING_KEYS.items():
        pinned = ic if algorithm == IC else od
        assert set(keys) <= set(pinned)
    assert (
        alg.spec_hyperparameters(OD, task="detection", num_classes=2, num_training_samples=50, image_shape=64)[
            "image_shape"
        ]
        == "300"
    )  # raised to the algorithm's minimum
    for values, algorithm in ((ic, IC), (multi, IC), (od, OD)):
        assert all(isinstance(v, str) for v in values.values())
        assert alg.container_error(algorithm, values, max_boxes=100 if algorithm == OD else None) is None


def test_spec_hyperparameters_refuse_what_the_algorithm_cannot_take() -> None:
    with pytest.raises(BadInput, match="cannot train task 'detection'"):
        alg.spec_hyperparameters(IC, task="detection", num_classes=2, num_training_samples=10)
    with pytest.raises(BadInput, match="not square"):
        alg.spec_hyperparameters(OD, task="detection", num_classes=2, num_training_samples=10, image_shape=(300, 400))
    with pytest.raises(BadInput, match="multi-label training only"):
        alg.spec_hyperparameters(
            IC, task="classification", num_classes=2, num_training_samples=10, label_format="multi-hot"
        )


# -- image URIs ---------------------------------------------------------------------------------------------------

# cloud-apis.md 1.5, the registry accounts of both algorithms by region.
DOCUMENTED_ACCOUNTS = {
    "us-east-1": "811284229777", "us-east-2": "825641698319", "us-west-1": "632365934929",
    "us-west-2": "433757028032", "ca-central-1": "469771592824", "ca-west-1": "190319476487",
    "eu-west-1": "685385470294", "eu-west-2": "644912444149", "eu-west-3": "749696950732",
    "eu-central-1": "813361260812", "eu-central-2": "680994064768", "eu-north-1": "669576153137",
    "eu-south-1": "257386234256", "eu-south-2": "104374241257", "af-south-1": "455444449433",
    "ap-east-1": "286214385809", "ap-northeast-1": "501404015308", "ap-northeast-2": "306986355934",
    "ap-northeast-3": "867004704886", "ap-south-1": "991648021394", "ap-south-2": "628508329040",
    "ap-southeast-1": "475088953585", "ap-southeast-2": "544295431143", "ap-southeast-3": "951798379941",
    "ap-southeast-4": "106583098589", "sa-east-1": "855470959533", "me-south-1": "249704162688",
    "me-central-1": "272398656194", "il-central-1": "898809789911", "cn-north-1": "390948362332",
    "cn-northwest-1": "387376663083", "us-gov-west-1": "226302683700", "us-gov-east-1": "237065988967",
    "us-iso-east-1": "490574956308", "us-isob-east-1": "765400339828", "us-isof-east-1": "108575199400",
    "us-isof-south-1": "124985052026",
}  # fmt: skip
DOMAINS = {"cn": "amazonaws.com.cn", "us-iso-": "c2s.ic.gov", "us-isob-": "sc2s.sgov.gov", "us-isof-": "csp.hci.ic.gov"}


def _domain(region: str) -> str:
    for start, domain in sorted(DOMAINS.items(), key=lambda item: -len(item[0])):
        if region.startswith(start):
            return domain
    return "amazonaws.com"


@pytest.mark.parametrize("region", sorted(DOCUMENTED_ACCOUNTS))
def test_every_documented_region_builds_both_uris(region: str) -> None:
    account = DOCUMENTED_ACCOUNTS[region]
    for algorithm in (IC, OD):
        expected = f"{account}.dkr.ecr.{region}.{_domain(region)}/{algorithm}:1"
        assert image_uris.training_image(algorithm, region) == expected
        assert image_uris.inference_image(algorithm, region) == expected


def test_table_is_exactly_the_documented_one_with_source() -> None:
    assert image_uris.known_regions() == sorted(DOCUMENTED_ACCOUNTS)
    assert (
        image_uris.training_image(IC, "us-east-1")
        == "811284229777.dkr.ecr.us-east-1.amazonaws.com/image-classification:1"
    )
    assert image_uris.training_image(OD, "cn-north-1") == (
        "390948362332.dkr.ecr.cn-north-1.amazonaws.com.cn/object-detection:1"
    )
    assert image_uris.partition("cn-northwest-1") == "aws-cn" and image_uris.partition("us-gov-west-1") == "aws-us-gov"
    source, as_of = image_uris.source()
    assert "sagemaker 2.257.7" in source and as_of == "2026-11-23"
    raw = json.loads((image_uris.resources.files("mcv_sagemaker") / "data" / "image_uris.json").read_text())
    assert {"source", "as_of", "regions"} <= set(raw)


def test_unknown_region_or_algorithm_is_bad_input_listing_the_known() -> None:
    with pytest.raises(BadInput, match=r"region 'mars-east-1'; known regions: af-south-1, ap-east-1"):
        image_uris.training_image(IC, "mars-east-1")
    with pytest.raises(BadInput, match="known: image-classification, object-detection"):
        image_uris.training_image("xgboost", "us-east-1")

from django import forms
from django.utils.translation import gettext_lazy as _

from .training import PRESETS

METHODS = [("lora", _("LoRA")), ("full", _("Full fine-tune")), ("qlora", _("QLoRA (GPU)"))]
FORMATS = [
    ("auto", _("Detect")),
    ("chat_template", _("Chat (tokenizer template)")),
    ("alpaca", _("Alpaca")),
    ("prompt_completion", _("Prompt / completion")),
    ("text", _("Plain text")),
]
PRECISIONS = [("auto", _("Auto")), ("bf16", "bf16"), ("fp16", "fp16"), ("fp32", "fp32")]


class TrainingForm(forms.Form):
    """The knobs people tune; anything else goes in `advanced` (JSON)."""

    base_model = forms.ChoiceField(label=_("Base model"))
    dataset_version = forms.ChoiceField(label=_("Dataset version"))
    preset = forms.ChoiceField(
        label=_("Preset"),
        required=False,
        choices=[("", "—"), *((k, v["title"]) for k, v in PRESETS.items())],
    )
    method = forms.ChoiceField(label=_("Method"), choices=METHODS, initial="lora")
    format = forms.ChoiceField(label=_("Prompt format"), choices=FORMATS, initial="auto")
    max_seq_length = forms.IntegerField(label=_("Max sequence length"), initial=1024, min_value=16)
    num_train_epochs = forms.FloatField(label=_("Epochs"), initial=1, min_value=0.01)
    max_steps = forms.IntegerField(label=_("Max steps (-1: epochs)"), initial=-1)
    learning_rate = forms.FloatField(label=_("Learning rate"), initial=2e-4)
    per_device_train_batch_size = forms.IntegerField(
        label=_("Batch size per device"), initial=4, min_value=1
    )
    gradient_accumulation_steps = forms.IntegerField(
        label=_("Gradient accumulation"), initial=1, min_value=1
    )
    save_steps = forms.IntegerField(label=_("Save every (steps)"), initial=100, min_value=1)
    eval_ratio = forms.FloatField(label=_("Eval split"), initial=0.1, min_value=0, max_value=0.5)
    precision = forms.ChoiceField(label=_("Precision"), choices=PRECISIONS, initial="auto")
    gpus_per_node = forms.IntegerField(label=_("GPUs"), initial=1, min_value=1)
    packing = forms.BooleanField(label=_("Sequence packing"), required=False, initial=True)
    gradient_checkpointing = forms.BooleanField(label=_("Gradient checkpointing"), required=False)
    advanced = forms.JSONField(
        label=_("Advanced settings (JSON)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    KNOBS = (
        "method",
        "format",
        "max_seq_length",
        "num_train_epochs",
        "max_steps",
        "learning_rate",
        "per_device_train_batch_size",
        "gradient_accumulation_steps",
        "save_steps",
        "eval_ratio",
        "precision",
        "gpus_per_node",
        "packing",
        "gradient_checkpointing",
    )

    def __init__(self, *args, base_models, dataset_versions, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["base_model"].choices = [(m.pk, m.name) for m in base_models]
        self.fields["dataset_version"].choices = [(v.pk, str(v)) for v in dataset_versions]

    def params(self) -> dict:
        data = self.cleaned_data
        params = {k: data[k] for k in self.KNOBS}
        if data.get("preset"):
            params["preset"] = data["preset"]
        return params | (data.get("advanced") or {})

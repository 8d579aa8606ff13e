# Environment for every tokclf entry point: offline Hub, no telemetry, quiet tokenizers.
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1}
export HF_DATASETS_OFFLINE=${HF_DATASETS_OFFLINE:-1}
export TRANSFORMERS_OFFLINE=${TRANSFORMERS_OFFLINE:-1}
export HF_HUB_DISABLE_TELEMETRY=1
export DO_NOT_TRACK=1
# WANDB_MODE is not set here: tokclf sets it to offline for log=wandb runs only (setting it
# globally makes transformers print "Running in WANDB offline mode" on every run).
export TOKENIZERS_PARALLELISM=false
# Prefect and DVC: no telemetry (Prefect's otherwise does DNS lookups), a start-up timeout that
# suits 2 cores for Prefect's temporary server.
export PREFECT_SERVER_ANALYTICS_ENABLED=false
export DVC_NO_ANALYTICS=1
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS=${PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS:-120}

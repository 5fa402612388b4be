#!/bin/sh
# Install Fashion-MNIST from Debian's dataset-fashion-mnist package when it is missing.
# Why: qloom never downloads datasets itself; the Debian package is the offline-friendly source.
# Exits 0 in every case where it cannot act (not root, no apt), after printing a note.
set -eu

FMNIST_DIR=/usr/share/datasets/fashion-mnist

if [ -d "$FMNIST_DIR" ]; then
    echo "install_datasets: Fashion-MNIST already present in $FMNIST_DIR"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_datasets: apt-get not found; install Fashion-MNIST yourself (IDX files) and"
    echo "  point QLOOM_DATA at a folder holding fashion-mnist/ (see qloom.data)."
    exit 0
fi

if [ "$(id -u)" != "0" ]; then
    echo "install_datasets: not root; run as root:"
    echo "  apt-get update && apt-get install -y dataset-fashion-mnist"
    exit 0
fi

echo "install_datasets: installing Debian package dataset-fashion-mnist"
if apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y dataset-fashion-mnist; then
    echo "install_datasets: Fashion-MNIST installed in $FMNIST_DIR"
else
    echo "install_datasets: apt-get failed; Fashion-MNIST is not installed (tests will skip)."
fi
exit 0

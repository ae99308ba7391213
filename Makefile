# The course's commands.  `make book` and `make test` are the only set-up a newcomer needs:
# both create .venv at the root when it is missing (and update it when pyproject.toml or
# constraints.txt change), with torch and torchvision pinned by constraints.txt.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=
# pytest-xdist workers: tests that share an expensive fixture (the built book, a grading
# batch) stay on one worker (tests/conftest.py); everything else is balanced.
TEST_JOBS ?= 2

.PHONY: help venv test check-chapters lint format book book-clean mathjax publish lab lab-instructor student-release clean release check-exercises grade-demo bench bench-save

help:
	@echo "make book     build the HTML book into _build/html (executes every code cell)"
	@echo "make publish  build the book and push _build/html to the gh-pages branch"
	@echo "make test     lint and run the whole test suite"
	@echo "make lab      open JupyterLab on the exercises, as students see it (as root: --allow-root added)"
	@echo "make lab-instructor   JupyterLab with nbgrader's instructor tools on solutions/"
	@echo "make student-release  commit the students' copy (no solutions/) to the branch student"
	@echo "make check-chapters  run the training chapters under other CPU paths and thread counts"
	@echo "make format   format the code with ruff"
	@echo "make clean    remove the virtual environment and build outputs"
	@echo "make release          regenerate exercises/ from solutions/"
	@echo "make check-exercises  check that exercises/ is up to date and solutions/ follows the conventions"
	@echo "make grade-demo       autograde the bundled demo submissions (table, feedback, grades.csv)"

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip "setuptools>=77" wheel
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[dev]"
	@touch $(STAMP)

venv: $(STAMP)

lint: venv
	$(BIN)/ruff check cvloss_ref grading tests benchmarks book/_ext
	$(BIN)/ruff format --check cvloss_ref grading tests benchmarks book/_ext
# The instructor notebooks (exercises/ is generated from them): ruff lints and formats the
# code cells of .ipynb files itself; `python -m grading check` checks that they are tidy.
	$(BIN)/ruff check solutions
	$(BIN)/ruff format --check solutions

format: venv
	$(BIN)/ruff format cvloss_ref grading tests benchmarks
	$(BIN)/ruff check --fix cvloss_ref grading tests benchmarks

test: lint
	$(BIN)/python -m pytest -n $(TEST_JOBS) --dist loadgroup --durations=25 $(PYTEST_ARGS)

# The chapters that train or simulate, executed under stand-ins for another CPU (scalar
# ATen kernels, MKL's compatible path, one and two threads): see CONTRIBUTING.md.
# One chapter: make check-chapters CHAPTERS=book/triplet-loss.md
CHAPTERS ?=
check-chapters: venv
	$(BIN)/python tests/chapters.py --outputs _build/chapter-runs $(CHAPTERS)

# MathJax is served from the built book, not from a CDN: npm installs the version pinned by
# package-lock.json into node_modules/ and the files the pages load are copied to
# book/_static/mathjax/ (both git-ignored), which _config.yml's mathjax_path points at.
MATHJAX     := book/_static/mathjax
MATHJAX_ES5 := node_modules/mathjax/es5

$(MATHJAX)/tex-mml-chtml.js: package.json package-lock.json
	npm ci --no-audit --no-fund
	rm -rf $(MATHJAX)
	mkdir -p $(MATHJAX)
	cp -R $(MATHJAX_ES5)/tex-mml-chtml.js $(MATHJAX_ES5)/input $(MATHJAX_ES5)/output \
		$(MATHJAX_ES5)/ui $(MATHJAX_ES5)/a11y $(MATHJAX_ES5)/adaptors $(MATHJAX_ES5)/sre \
		$(MATHJAX)/
	cp node_modules/mathjax/LICENSE $(MATHJAX)/LICENSE
	@touch $@

mathjax: $(MATHJAX)/tex-mml-chtml.js

# One thread per kernel unless OMP_NUM_THREADS says otherwise: the chapters' tensors are
# tiny, and several torch threads on a busy two-core machine spend more time waiting for each
# other than computing (10x slower).  The verdicts do not depend on it (make check-chapters).
book: venv mathjax
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(BIN)/jupyter-book build --nitpick --warningiserror --keep-going .

# Push the built HTML to the gh-pages branch of `origin` (-n: add .nojekyll so that GitHub
# Pages serves the _static/ and _images/ folders; -f: replace the branch's history).
publish: book
	$(BIN)/ghp-import -n -p -f -m "Publish the book" _build/html

book-clean:
	rm -rf _build

# JupyterLab on the exercises as students see them: lab/student/ is the Jupyter
# configuration that hides nbgrader's instructor tools (lab/README.md).  Jupyter refuses to
# run as root unless told; in a container, where one is root, --allow-root is added.
LAB_ARGS ?=
ALLOW_ROOT = $$( [ "$$(id -u)" = 0 ] && echo --allow-root )
lab: venv
	JUPYTER_CONFIG_DIR="$(CURDIR)/lab/student" $(BIN)/jupyter lab $(ALLOW_ROOT) $(LAB_ARGS) exercises

# The full nbgrader interface (Create Assignment, formgrader) on the instructor notebooks.
lab-instructor: venv
	$(BIN)/jupyter lab $(ALLOW_ROOT) $(LAB_ARGS) solutions

# The students' copy of the course (no solutions/, grading/ or tests/) as the branch
# `student`, which the launch buttons open; push it with `git push origin student`.
# STUDENT_ARGS="--folder DIR" also writes it to a folder (grading/student.py).
STUDENT_ARGS ?=
student-release: venv
	$(BIN)/python -m grading.student $(STUDENT_ARGS)

clean:
	rm -rf $(VENV) _build .pytest_cache .ruff_cache

release: venv
	$(BIN)/python -m grading release

check-exercises: venv
	$(BIN)/python -m grading check

# Copies the bundled demo submissions (honest and broken) into $(GRADING_DIR)/submitted/,
# grades them in the bubblewrap sandbox, writes HTML feedback and $(GRADING_DIR)/grades.csv.
GRADING_DIR ?= grading
DEMO_ENV := CVLOSS_GRADING_DIR=$(abspath $(GRADING_DIR))

grade-demo: venv
	$(DEMO_ENV) $(BIN)/python -m grading.demo install
	$(DEMO_ENV) $(BIN)/python -m grading autograde a02_classification --jobs 2
	$(DEMO_ENV) $(BIN)/python -m grading feedback a02_classification
	$(DEMO_ENV) $(BIN)/python -m grading report a02_classification
	$(DEMO_ENV) $(BIN)/python -m grading export --output $(abspath $(GRADING_DIR))/grades.csv

# Forward + backward of every loss against its peer library, on the CPU (a few minutes).
# glibc's defaults give large blocks back to the system after every call, which makes
# CPU timings flip between 1x and 4x: these three variables keep the memory.
BENCH_ARGS ?=
bench: venv
	MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=17179869184 \
		MALLOC_TOP_PAD_=1073741824 $(BIN)/python benchmarks/compare.py $(BENCH_ARGS)

# A whole CPU run, stored in benchmarks/results/cpu.json, then written into the README (the
# book's appendix reads the stored run when it is built).
bench-save: venv
	MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=17179869184 \
		MALLOC_TOP_PAD_=1073741824 $(BIN)/python benchmarks/compare.py \
		--save benchmarks/results/cpu.json
	$(BIN)/python benchmarks/report.py

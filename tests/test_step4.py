"""Step 4: the pipeline on the fine-tuned folder, repeatable sampling, and the fallback to the base model."""

import shutil

from aurore.config import Config
from aurore.engines import generation
from conftest import run_script, script

step4 = script("4_generate_solution")


def test_the_fine_tuned_folder_is_used_and_the_same_seed_gives_the_same_text(tiny_model_dir, tmp_path, capsys):
    config = Config(workdir=tmp_path, base_model=str(tmp_path / "absent"))
    shutil.copytree(tiny_model_dir, config.finetuned_dir)
    argv = ["--workdir", str(tmp_path), "--max-new-tokens", "8", "--seed", "3", "Cette femme", "Le soir"]
    first, second = step4.main(argv), step4.main(argv)
    assert first == second and list(first) == ["Cette femme", "Le soir"]
    assert all(len(texts) == 2 and all(t.startswith(p) for t in texts) for p, texts in first.items())
    other = step4.main(argv[:-2] + ["--seed", "4", "Cette femme", "Le soir"])
    assert other != first  # the seed matters
    out = capsys.readouterr().out
    assert "Modèle : GPT-2 affiné sur George Sand (étape 3)" in out
    assert "Réglages : 8 nouveaux jetons ; échantillonnage, température 0,90, top-k 50, top-p 0,95, graine 3" in out
    assert "Étape suivante, la page web de ce modèle : `python aurore/5_flask.py` (ou la solution" in out


def test_without_step3_the_base_model_is_used_and_said(tiny_model_dir, tmp_path, capsys):
    base = shutil.copytree(tiny_model_dir, tmp_path / "base")
    config = Config(workdir=tmp_path / "work", base_model=str(base))
    choice = generation.choose_model(config)
    assert (choice.name, choice.folder, choice.finetuned, choice.standin) == (str(base), str(base), False, False)
    step4.main(["--workdir", str(config.workdir), "--base-model", str(base), "--max-new-tokens", "4", "--greedy"])
    out = capsys.readouterr().out
    assert "Modèle : modèle de base, non affiné (lancez l'étape 3)" in out
    assert "Réglages : 4 nouveaux jetons ; glouton (toujours le jeton le plus probable) ; 1 texte(s) par début" in out


def test_greedy_generation_is_deterministic_whatever_the_seed(tiny_model_dir, tmp_path):
    generator = generation.load_generator(str(tiny_model_dir), Config(workdir=tmp_path))
    greedy = [generation.generate(generator, "La rivière", generation.Sampling(max_new_tokens=6, do_sample=False,
                                                                               seed=s)) for s in (1, 2)]
    assert greedy[0] == greedy[1]


def test_the_command_line_runs_offline_with_a_clear_error_when_nothing_is_there(tmp_path):
    result = run_script(["aurore/4_generate_solution.py", "Bonjour"],
                        {"AURORE_WORKDIR": str(tmp_path), "AURORE_BASE_MODEL": str(tmp_path / "none")})
    assert result.returncode == 1 and "Traceback" not in result.stderr and "n'existe pas" in result.stderr


def test_a_prompt_longer_than_the_context_is_a_clear_error(tiny_model_dir, tmp_path):
    import pytest

    from aurore.errors import AuroreError

    generator = generation.load_generator(str(tiny_model_dir), Config(workdir=tmp_path))
    with pytest.raises(AuroreError, match=r"dépassent la mémoire du modèle \(64 jetons\)"):
        generation.generate(generator, "La rivière " * 30, generation.Sampling(max_new_tokens=10))

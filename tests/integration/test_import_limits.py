"""`ticktape import` of a hostile file against a real nats-server: a gzip bomb (a genuine header,
then one endless line) fails naming the line and the limit, in bounded memory, and leaves no
stream behind."""

from __future__ import annotations

import gzip

from tests.support.bars import wave_bars
from tests.support.hostile import gzip_bomb, peak_rss_mib
from ticktape.replay.fileformat import MAX_LINE_BYTES, write_session_file
from ticktape.replay.simulate import simulate_session


def test_importing_a_gzip_bomb_fails_early_in_bounded_memory(nats_url, tmp_path):
    meta, records = simulate_session(wave_bars("BTCUSDT", 3), {}, "20250101T000000Z-b0mb00")
    genuine = tmp_path / "genuine.ttsession.gz"
    write_session_file(genuine, meta, records)
    header = gzip.decompress(genuine.read_bytes()).split(b"\n", 1)[0] + b"\n"
    bomb = tmp_path / "bomb.ttsession.gz"
    gzip_bomb(bomb, 256, first_line=header)  # before the bound, the reader held 256 MiB twice over

    code, err, peak = peak_rss_mib("ticktape", "import", str(bomb), "--nats", nats_url)
    assert code == 1, err
    assert f"line 2 is longer than the limit of {MAX_LINE_BYTES} bytes" in err
    assert peak < 200, f"peak RSS {peak} MiB"

    code, err, _ = peak_rss_mib(  # the failed import deleted its stream: the same import runs again
        "ticktape", "import", str(bomb), "--nats", nats_url, "--max-line-mib", "1"
    )
    assert code == 1 and f"longer than the limit of {2**20} bytes" in err, err
    code, err, _ = peak_rss_mib("ticktape", "import", str(genuine), "--nats", nats_url)
    assert code == 0, err

"""`python -m bench.profile_refresh`: where the time of one refresh rotation goes, in-process, under cProfile.

Same setup as the OAuth bench (see bench.profiling), driven through the Flask test client.
"""

import sys

from bench import oauth_load, profiling
from bench.errors import BenchError

PROFILED = 10


def _profile(setup: profiling.Setup) -> None:
    token = profiling.token_answer(setup)["refresh_token"]
    api = setup.app.test_client()

    def refresh() -> None:
        nonlocal token
        answer = api.post(oauth_load.TOKEN_PATH, data=oauth_load.refresh_form(setup.rp, token))
        if answer.status_code != 200:
            raise BenchError(f"refresh: status {answer.status_code}")
        token = answer.json["refresh_token"]

    print(f"{setup.where}: one refresh takes {profiling.mean_ms(refresh):.1f} ms in-process "
          f"(mean of {profiling.TIMED})")  # fmt: skip
    profiling.profile("refreshes", refresh, PROFILED)


if __name__ == "__main__":
    sys.exit(profiling.main(_profile))

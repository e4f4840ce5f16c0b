from ..cli.fake_clevertap import fake_clevertap

fake_clevertap(prog_name="python -m consumer.fake_clevertap")

"""DeepStack's (and CodeProject.AI's) detection API: ``POST /v1/vision/detection``, the call that
Frigate's ``deepstack`` detector, Home Assistant's deepstack_object and Blue Iris make."""

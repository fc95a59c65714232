"""Assets that connect the DAGs: cleaning feeds training; new models trigger redeploys."""

from airflow.sdk import Asset

CLEANED_DATA = Asset(name="cleaned_data", uri="streamguard://cleaned-data")
LSTM_ED_MODELS = Asset(name="lstm_ed_models", uri="streamguard://models/lstm_ed")
HYDRO_MODELS = Asset(name="hydro_models", uri="streamguard://models/hydro")

"""The LangGraph peer: a one-node graph whose model is a zero-latency fake (the same job as loophost's scripted
model in the HTTP benchmark). Installed only in the benchmark's throwaway environment, never with loophost."""

from itertools import cycle

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langgraph.graph import END, START, MessagesState, StateGraph

model = GenericFakeChatModel(messages=cycle([AIMessage(content="echo: hello")]))


def call_model(state: MessagesState) -> dict:
    return {"messages": [model.invoke(state["messages"])]}


builder = StateGraph(MessagesState)
builder.add_node("model", call_model)
builder.add_edge(START, "model")
builder.add_edge("model", END)
graph = builder.compile()
